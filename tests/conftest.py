"""Shared fixtures for the process-level tests: temp roots, a real ``inboxd run`` process
with its JSON log captured, bounded waits on the SQLite DB (read-only), and checks of
the invariants every run must keep (valid transition paths, no lost or doubled pair)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from daemon.states import BatchState, allowed

REPO = Path(__file__).resolve().parent.parent
INBOXD = Path(sys.executable).parent / "inboxd"

#: A batch whose pairs are in the corpus: imported or any later stage of the pipeline.
DONE_STATES = frozenset(
    {
        BatchState.IMPORTED,
        BatchState.EMBEDDED,
        BatchState.DEDUPLICATED,
        BatchState.SCORED,
        BatchState.INDEXED,
    }
)
#: A batch nothing will happen to unless its file changes or someone runs `retry`.
RESTING_STATES = DONE_STATES | {BatchState.REJECTED, BatchState.SUPERSEDED}

#: Upper bound for any single wait on the daemon. Generous: the later stages load a
#: model at start-up, and a 2-core CI machine runs other tests at the same time.
TIMEOUT = float(os.environ.get("INBOXD_TEST_TIMEOUT", "60"))

#: Short windows so the tests run in seconds, not minutes.
FAST_ENV = {
    "INBOXD_WATCH__SETTLE_SECONDS": "0.2",
    "INBOXD_WATCH__RESCAN_SECONDS": "1.0",
    "INBOXD_WATCH__POLL_SECONDS": "0.05",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


# -- waiting ----------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = TIMEOUT,
    *,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition",
    ignore: tuple[type[BaseException], ...] = (sqlite3.OperationalError,),
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or fail after
    ``timeout`` seconds. Exceptions in ``ignore`` (a DB not created yet) count as False."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except ignore as exc:
            result, last_error = None, exc
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            detail = f" (last error: {last_error!r})" if last_error else ""
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {text}{detail}")
        time.sleep(interval)  # the poll interval of a bounded wait


def poll_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.01) -> bool:
    """Like wait_until, but returns False on timeout instead of failing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)  # the poll interval of a bounded wait
    return bool(predicate())


# -- the DB, read-only --------------------------------------------------------------------


def db_path(root: Path) -> Path:
    return root / "state" / "inboxd.db"


@contextlib.contextmanager
def connect(root: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the root's DB (raises OperationalError if absent)."""
    path = db_path(root)
    if not path.exists():
        raise sqlite3.OperationalError(f"{path} does not exist yet")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def query(root: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of one read-only query."""
    with connect(root) as conn:
        return conn.execute(sql, params).fetchall()


def scalar(root: Path, sql: str, params: Sequence[Any] = ()) -> Any:
    rows = query(root, sql, params)
    return rows[0][0] if rows else None


def batches(root: Path) -> list[dict[str, Any]]:
    """Every batch row, oldest first."""
    with connect(root) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM batches ORDER BY id")]


def latest_states(root: Path) -> dict[str, str]:
    """The state of the newest batch of each path."""
    return {b["path"]: b["state"] for b in batches(root)}


def pair_questions(root: Path) -> list[str]:
    return [row[0] for row in query(root, "SELECT question FROM pairs ORDER BY id")]


def all_resting(root: Path, paths: Iterable[str] | None = None, count: int | None = None) -> bool:
    """True when every batch rests (done, rejected or superseded) and the given paths
    (or at least ``count`` batches) are there."""
    rows = batches(root)
    if any(b["state"] not in RESTING_STATES for b in rows):
        return False
    if count is not None and len(rows) < count:
        return False
    if paths is not None:
        latest = {b["path"]: b["state"] for b in rows}
        return all(p in latest for p in paths)
    return True


def imported(root: Path, paths: Iterable[str]) -> dict[str, str] | None:
    """The latest states if every batch rests and the newest batch of each of ``paths``
    is done; None otherwise."""
    wanted = list(paths)
    if not all_resting(root, wanted):
        return None
    latest = latest_states(root)
    return latest if all(latest[p] in DONE_STATES for p in wanted) else None


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except sqlite3.Error as exc:
        return repr(exc)


def assert_consistent(root: Path) -> None:
    """The invariants of the store after any run, crashed or not.

    - each batch's transitions start at detected, chain (each move starts where the last
      ended), are allowed by ``daemon.states.TRANSITIONS``, and end in the batch's state;
    - pairs are unique by hash and every pair has a source;
    - pair_sources has no duplicate (pair, batch, position), and every batch that was
      imported has exactly one source row per valid pair (nothing half-imported).
    """
    with connect(root) as conn:
        rows = conn.execute("SELECT id, state, pairs_valid FROM batches ORDER BY id").fetchall()
        moves: dict[int, list[tuple[str | None, str]]] = {}
        for batch_id, here, there in conn.execute(
            "SELECT batch_id, from_state, to_state FROM transitions ORDER BY id"
        ):
            moves.setdefault(batch_id, []).append((here, there))
        for batch_id, state, pairs_valid in rows:
            path = moves.get(batch_id, [])
            assert path, f"batch {batch_id} has no transitions"
            assert path[0] == (None, BatchState.DETECTED), f"batch {batch_id} starts {path[0]}"
            previous: str | None = None
            for here, there in path:
                assert here == previous, f"batch {batch_id}: path breaks at {here}->{there}"
                assert allowed(BatchState(here) if here else None, BatchState(there)), (
                    f"batch {batch_id}: {here} -> {there} is not in TRANSITIONS"
                )
                previous = there
            assert previous == state, f"batch {batch_id} is {state} but its path ends {previous}"
            went_through_import = any(there == BatchState.IMPORTED for _, there in path)
            if went_through_import:
                (sources,) = conn.execute(
                    "SELECT count(*) FROM pair_sources WHERE batch_id = ?", [batch_id]
                ).fetchone()
                assert sources == pairs_valid, (
                    f"batch {batch_id}: {sources} source rows for {pairs_valid} valid pairs"
                )
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT hash) FROM pairs"
        ).fetchone()
        assert total == distinct, f"{total - distinct} pair hash(es) doubled"
        doubled = conn.execute(
            "SELECT pair_id, batch_id, position, count(*) FROM pair_sources"
            " GROUP BY pair_id, batch_id, position HAVING count(*) > 1"
        ).fetchall()
        assert not doubled, f"pair_sources rows doubled: {doubled[:5]}"
        orphans = conn.execute(
            "SELECT count(*) FROM pairs WHERE id NOT IN (SELECT pair_id FROM pair_sources)"
        ).fetchone()[0]
        assert orphans == 0, f"{orphans} pair(s) with no source"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- files ------------------------------------------------------------------------------


def qa_pairs(prefix: str, count: int, *, answer_words: int = 25) -> list[dict[str, Any]]:
    """``count`` distinct, deterministic pairs whose questions start with ``prefix``."""
    filler = " ".join(f"w{i}" for i in range(answer_words))
    return [
        {
            "question": f"{prefix} question {i}: what does parameter {i} of {prefix} control?",
            "answer": f"Parameter {i} of {prefix} sets the look-back window; {filler}.",
            "type": "definition",
            "difficulty": "beginner",
        }
        for i in range(count)
    ]


def encode_qa(pairs: list[dict[str, Any]], fmt: str = "array", **file_fields: Any) -> bytes:
    """A Q&A file's bytes: ``array`` (bare list), ``object`` (qa_pairs envelope), ``jsonl``."""
    if fmt == "jsonl":
        return "".join(json.dumps(p) + "\n" for p in pairs).encode()
    if fmt == "object":
        return json.dumps({**file_fields, "qa_pairs": pairs}, indent=2).encode()
    return json.dumps(pairs, indent=2).encode()


def drop(path: Path, data: bytes) -> Path:
    """Deliver a file the way a careful agent does: a dot-temp name, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.partial")
    temp.write_bytes(data)
    temp.rename(path)
    return path


def copy_tree(source: Path, target: Path) -> list[Path]:
    """Copy a tree file by file (writable copies, unlike the read-only examples)."""
    copied = []
    for item in sorted(source.rglob("*")):
        if item.is_file():
            dest = target / item.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item, dest)
            copied.append(dest)
    return copied


# -- the daemon process -------------------------------------------------------------------


class Daemon:
    """One root's ``inboxd run``, started (and restarted) as a real process.

    Every start writes its stdout (JSON log lines) and stderr to new files under the
    test's temp folder, so each run's log can be read on its own.
    """

    def __init__(self, root: Path, logs: Path, env: dict[str, str], log_level: str) -> None:
        self.root = root
        self.logs = logs
        self.env = env
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    # starting and stopping

    def start(self, *args: str, wait_ready: bool = True) -> Daemon:
        """Start ``inboxd --root R run``; by default wait for ``daemon.ready``."""
        assert not self.alive, "already running"
        self.runs += 1
        argv = [str(INBOXD), "--root", str(self.root), "--log-level", self.log_level, "run", *args]
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=err, env=self.env, start_new_session=True
            )
        if wait_ready:
            self.wait_for("daemon.ready")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM, then wait for the exit; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"daemon did not exit within {timeout}s of SIGTERM")

    def kill(self) -> None:
        """SIGKILL the daemon (and anything it started), then reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    # its log

    @property
    def out_path(self) -> Path:
        return self.logs / f"run{self.runs}.out"

    @property
    def err_path(self) -> Path:
        return self.logs / f"run{self.runs}.err"

    def lines(self, run: int | None = None) -> list[dict[str, Any]]:
        """The JSON log lines of one run (the current one by default); a line still being
        written is left out."""
        path = self.logs / f"run{run or self.runs}.out"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        found = []
        for raw in data.split(b"\n")[:-1]:
            with contextlib.suppress(ValueError):
                found.append(json.loads(raw))
        return found

    def all_lines(self) -> list[dict[str, Any]]:
        return [line for run in range(1, self.runs + 1) for line in self.lines(run)]

    def events(self, name: str, run: int | None = None) -> list[dict[str, Any]]:
        return [line for line in self.lines(run) if line.get("event") == name]

    def stderr(self) -> str:
        try:
            return self.err_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self) -> str:
        tail = "\n".join(json.dumps(line) for line in self.lines()[-15:])
        code = None if self.proc is None else self.proc.poll()
        return f"exit code {code}; last log lines:\n{tail}\nstderr:\n{self.stderr()[-2000:]}"

    # waiting on it

    def wait_until(
        self, predicate: Callable[[], Any], timeout: float = TIMEOUT, what: str = ""
    ) -> Any:
        """wait_until that also fails at once, with the log, if the daemon died."""

        def check() -> Any:
            if not self.alive:
                pytest.fail(
                    f"daemon exited while waiting for {what or 'a condition'}: {self.describe()}"
                )
            return predicate()

        return wait_until(check, timeout, message=lambda: f"{what}; {self.describe()}")

    def mark(self) -> int:
        """How many log lines this run has written so far: ``wait_for(..., after=mark)``
        then waits for an event logged after this moment, not one from before it."""
        return len(self.lines())

    def wait_for(
        self,
        event: str,
        timeout: float = TIMEOUT,
        *,
        after: int = 0,
        count: int = 1,
        **fields: Any,
    ) -> dict[str, Any]:
        """The ``count``-th log line of this run with this event name (and field values),
        among the lines after the first ``after`` (see ``mark``)."""

        def found() -> dict[str, Any] | None:
            matching = [
                line
                for line in self.lines()[after:]
                if line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
            ]
            return matching[count - 1] if len(matching) >= count else None

        what = f"event {event} {fields or ''}" + (f" x{count}" if count > 1 else "")
        return self.wait_until(found, timeout, what=what)

    def wait_rescans(self, count: int = 2, timeout: float = TIMEOUT) -> None:
        """Wait for ``count`` more periodic rescans (``scan.completed``, logged at debug:
        start the daemon with ``log_level="debug"``). With FAST_ENV's settle window
        shorter than the rescan interval, by the second one whatever the first saw has
        settled and been taken, or not."""
        assert self.log_level == "debug", "scan.completed is logged at debug level"
        self.wait_for("scan.completed", timeout, after=self.mark(), count=count)

    def wait_done(self, paths: Iterable[str], timeout: float = TIMEOUT) -> dict[str, str]:
        """Wait until the newest batch of every path is done; returns the latest states."""
        wanted = sorted(paths)
        return self.wait_until(
            lambda: imported(self.root, wanted),
            timeout,
            what=f"{wanted} to be imported; batches {_safe(lambda: latest_states(self.root))}",
        )


# -- nothing left behind --------------------------------------------------------------------

#: How long a test's threads and child processes get to end after it (joined and polled,
#: not slept) before they count as leaked: a stopped service's threads end within
#: one loop tick; a SIGTERMed child within a second even on a loaded machine.
LEAK_GRACE = float(os.environ.get("INBOXD_TEST_LEAK_GRACE", "5"))

#: Threads a library starts once per process, on first use, and keeps on purpose. They
#: are not any test's to stop, so whichever test happens to start them is not blamed.
LONG_LIVED_THREADS: tuple[str, ...] = (
    # tqdm's watchdog for stuck progress bars: started by the first bar (the
    # sentence-transformers comparison in test_local_embedder), lives until exit.
    "tqdm_monitor",
)


def live_children() -> dict[tuple[int, str], str]:
    """This process's live (not zombie) children: (pid, start time) -> command line.
    The start time tells a reused pid from the process a test started."""
    found: dict[tuple[int, str], str] = {}
    me = os.getpid()
    for task in Path(f"/proc/{me}/task").iterdir():
        with contextlib.suppress(OSError):
            for pid in (task / "children").read_text().split():
                proc = Path("/proc") / pid
                with contextlib.suppress(OSError):
                    # stat: pid (comm) state ppid ... starttime; comm may hold spaces.
                    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                    if fields[0] == "Z":
                        continue  # exited, only not reaped yet: nothing runs
                    argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                    found[(int(pid), fields[19])] = argv.decode(errors="replace")[:200]
    return found


def leaked_threads(before: set[threading.Thread], deadline: float) -> list[str]:
    """Threads started since ``before`` still alive at ``deadline`` (joined until then)."""
    leaked = []
    for thread in threading.enumerate():
        if thread in before or thread is threading.current_thread():
            continue
        if thread.name.startswith(LONG_LIVED_THREADS):
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            leaked.append(f"thread {thread.name!r} (daemon={thread.daemon})")
    return leaked


def leaked_children(before: dict[tuple[int, str], str], deadline: float) -> list[str]:
    """Children started since ``before`` still running at ``deadline``; they are then
    SIGKILLed, so one leak does not spill into the next test."""
    new = {key: argv for key, argv in live_children().items() if key not in before}
    while new and time.monotonic() < deadline:
        time.sleep(0.05)  # the poll interval of the grace period
        now = live_children()
        new = {key: argv for key, argv in new.items() if key in now}
    for pid, _ in new:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return [f"process {pid}: {argv}" for (pid, _), argv in new.items()]


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """Fail a test that leaves a thread or a child process running after it: the next
    test (or the next run of a worker) would share the machine, the DB or the port."""
    threads = set(threading.enumerate())
    children = live_children()
    yield
    deadline = time.monotonic() + LEAK_GRACE
    leaked = leaked_threads(threads, deadline) + leaked_children(children, deadline)
    if leaked:
        pytest.fail(f"left running {LEAK_GRACE:.0f}s after the test: " + "; ".join(leaked))


@pytest.fixture(scope="session")
def model() -> Any:
    """The real all-MiniLM-L6-v2, loaded once per test process (later loads are free)."""
    from daemon.providers.embedders.local import LocalEmbedder

    embedder = LocalEmbedder()
    assert embedder.encoder is not None
    return embedder


@pytest.fixture(scope="session")
def rag_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The RAG hand-off corpus (tests/rag_corpus.py) refined once per test process.
    Never handed to a test as is: modules take ``rag_corpus.copy_of`` it."""
    import rag_corpus  # it imports this module: loaded once conftest is

    base = tmp_path_factory.mktemp("rag-template")
    rag_corpus.build(base)
    return base


@pytest.fixture
def cli_isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """For tests that call the CLI in-process: no INBOXD_* variable leaks in, and the
    logging the CLI configures (pointed at CliRunner's streams) is undone after."""
    import structlog

    for name in list(os.environ):
        if name.startswith("INBOXD_"):
            monkeypatch.delenv(name)
    yield
    structlog.reset_defaults()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty inboxd root: inbox/, outbox/ and state/."""
    base = tmp_path / "root"
    for name in ("inbox", "outbox", "state"):
        (base / name).mkdir(parents=True)
    return base


@pytest.fixture
def examples_root() -> Path:
    """The example tree of the design (read-only; copy from it)."""
    from builders import example_tree

    return example_tree()


def daemon_env(**overrides: str) -> dict[str, str]:
    """The environment for an inboxd process: ours without INBOXD_*, plus FAST_ENV."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INBOXD_")}
    env.update(FAST_ENV)
    env.update(overrides)
    return env


@pytest.fixture
def make_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Build Daemon helpers: ``make_daemon(root, log_level="info", **ENV)``. Whatever is
    still running at the end of the test is SIGKILLed, so nothing leaks."""
    made: list[Daemon] = []

    def make(root: Path, log_level: str = "info", **env: str) -> Daemon:
        logs = tmp_path / f"daemon{len(made) + 1}-logs"
        logs.mkdir()
        daemon = Daemon(root, logs, daemon_env(**env), log_level)
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.kill()


def run_cli(
    root: Path, *args: str, timeout: float = TIMEOUT, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``inboxd --root R ARGS`` to completion (killed after ``timeout``)."""
    return subprocess.run(
        [str(INBOXD), "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=daemon_env(**env),
        timeout=timeout,
        check=False,
    )


# sun_path holds 108 bytes including the terminating NUL.
_MAX_UNIX_PATH = 107


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd's NOTIFY_SOCKET, and its path;
    under a short private folder when tmp_path is too deep to hold a socket."""
    path = tmp_path / "notify.sock"
    short_dir: str | None = None
    if len(os.fsencode(path)) > _MAX_UNIX_PATH:  # a deep basetemp cannot hold a socket
        short_dir = tempfile.mkdtemp(prefix="inboxd-")
        path = Path(short_dir) / "n.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(5)
    sock.bind(str(path))
    try:
        yield sock, str(path)
    finally:
        sock.close()
        if short_dir is not None:
            path.unlink(missing_ok=True)
            Path(short_dir).rmdir()
