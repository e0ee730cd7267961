"""On-demand benchmarks of the supervisor/worker runtime (issue 11), each on a real
``inboxd run`` process with a fake systemd ``NOTIFY_SOCKET`` bound here:

    .venv/bin/python benchmarks/bench_runtime.py intake --during embedding   # 17k pairs embedding
    .venv/bin/python benchmarks/bench_runtime.py intake --during hung-api    # Gemini hangs
    .venv/bin/python benchmarks/bench_runtime.py watchdog --during file      # one 5,000-pair file
    .venv/bin/python benchmarks/bench_runtime.py watchdog --during corpus --corpus-pairs 100000
    .venv/bin/python benchmarks/bench_runtime.py watchdog --during hung-api
    .venv/bin/python benchmarks/bench_runtime.py prepare --corpus-pairs 100000  # the corpus root

``intake``: while the worker is busy (embedding a 17,000-pair backlog with the local
model, or blocked on a loopback Gemini whose embedding calls hang), 80-pair files are
dropped one at a time; each is timed from the drop to its ``imported`` transition (the
``at`` the daemon wrote in ``transitions``). Target: p50 within settle + 1 s. Then
SIGTERM, timed to the process's exit. Target: exit 0 within 5 s.

``watchdog``: ``WATCHDOG_USEC`` (2 s by default: a ping a second) and the largest gap
between ``WATCHDOG=1`` datagrams over the run, against WatchdogSec; with the shipped
``[worker] stall_seconds`` (45) a worker silent longer than that also shows as a gap.

Every run also reports the supervisor loop's longest iteration (``longest_iteration_ms``
of ``daemon.stopping``), its ``loop.slow_iteration`` events (over 1 s) and the machine's
load average sampled through the run. Results are saved as JSON under ``<work>/results/``.

The 100,000-pair corpus root is built once (``prepare``, in-process): the corpus of
``corpus.py`` imported through the real intake, then every text given a stored random
unit vector instead of being embedded (200,000 texts: 20-60 minutes of the local model
on a quiet 2-core machine, many hours on a loaded one), then the real worker stages
(dedupe, score, index) run over it. The corpus run the benchmark times is then the
daemon's own, on those vectors.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for folder in (REPO, REPO / "tests"):  # run as a script: `benchmarks`, `daemon`, the fake
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from benchmarks import corpus  # noqa: E402
from benchmarks.bench_refinement import (  # noqa: E402
    copy_root,
    loadavg,
    machine,
    percentile,
    quiet_logging,
    table,
    verdict,
)

INBOXD = Path(sys.executable).parent / "inboxd"
DEFAULT_WORK = Path("/tmp/inboxd-bench-runtime")
DIM = 384
STOP_TARGET_S = 5.0
INTAKE_SLACK_S = 1.0  # imported within settle + this


# -- what the daemon tells systemd ------------------------------------------------------


class NotifySocket:
    """A bound datagram socket standing in for systemd's ``NOTIFY_SOCKET``; a thread
    records when each ``WATCHDOG=1``, ``READY=1`` and ``STOPPING=1`` arrives."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="ibr-")  # short: sun_path holds 107 bytes
        self.path = str(Path(self._dir) / "n.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._sock.settimeout(0.1)
        self.pings: list[float] = []
        self.ready_at: float | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="notify", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            at = time.monotonic()
            if b"WATCHDOG=1" in data:
                self.pings.append(at)
            if b"READY=1" in data and self.ready_at is None:
                self.ready_at = at

    def gaps(self, start: float, end: float) -> dict[str, Any]:
        """Pings in [start, end] and the largest gap, the window's edges included (a
        silence at the end of the window counts as much as one between two pings)."""
        inside = [t for t in self.pings if start <= t <= end]
        edges = [start, *inside, end]
        gaps = [b - a for a, b in itertools.pairwise(edges)]
        return {
            "window_s": round(end - start, 1),
            "pings": len(inside),
            "max_gap_s": round(max(gaps), 3) if gaps else None,
            "p99_gap_s": round(percentile(gaps, 99), 3) if gaps else None,
        }

    def close(self) -> None:
        self._closed.set()
        self._thread.join(2)
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class LoadSampler:
    """The 1-minute load average every few seconds while a run lasts."""

    def __init__(self, every: float = 5.0) -> None:
        self.samples: list[float] = [os.getloadavg()[0]]
        self.before = loadavg()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(1.0)
        return {
            "before": self.before,
            "after": loadavg(),
            "min_1m": round(min(self.samples), 2),
            "mean_1m": round(statistics.fmean(self.samples), 2),
            "max_1m": round(max(self.samples), 2),
        }


# -- the daemon process ------------------------------------------------------------------


class DaemonRun:
    """One ``inboxd --root R --log-level debug run``: its JSON log read incrementally,
    its notifications recorded, stopped with SIGTERM and timed."""

    def __init__(self, root: Path, logs: Path, env: dict[str, str], watchdog_usec: int) -> None:
        self.root = root
        self.log_path = logs / "daemon.out"
        self.err_path = logs / "daemon.err"
        self.notify = NotifySocket()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("INBOXD_")}
        self.env.update(
            {
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false",
                "NOTIFY_SOCKET": self.notify.path,
                "WATCHDOG_USEC": str(watchdog_usec),
                **env,
            }
        )
        self.env.pop("WATCHDOG_PID", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self._events: list[dict[str, Any]] = []
        self._offset = 0
        self._partial = b""
        self.window_epoch = float("inf")
        self.load = LoadSampler()

    def mark_window(self) -> float:
        """The measured window starts now (monotonic time; the wall time is kept too)."""
        self.window_epoch = time.time()
        return time.monotonic()

    def start(self, ready_timeout: float = 600) -> DaemonRun:
        argv = [str(INBOXD), "--root", str(self.root), "--log-level", "debug", "run"]
        with self.log_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err, env=self.env)
        self.wait_event("daemon.ready", ready_timeout)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Log lines so far (of one event name); read on from where the last call ended."""
        with self.log_path.open("rb") as log:
            log.seek(self._offset)
            data = log.read()
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            with contextlib.suppress(ValueError):
                self._events.append(json.loads(raw))
        return [e for e in self._events if name is None or e.get("event") == name]

    def wait_event(self, name: str, timeout: float) -> dict[str, Any]:
        found: dict[str, Any] = self.wait(
            lambda: next(iter(self.events(name)), None), timeout, name
        )
        return found

    def wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll ``predicate`` until truthy; fail if the daemon exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(sqlite3.OperationalError):
                found = predicate()
                if found:
                    return found
            if not self.alive:
                raise RuntimeError(f"inboxd exited while waiting for {what}; see {self.log_path}")
            time.sleep(0.02)
        raise TimeoutError(f"no {what} after {timeout:.0f} s; see {self.log_path}")

    def terminate(self, timeout: float = 120) -> dict[str, Any]:
        """SIGTERM; seconds to the exit, the exit code, and what the log said at the end."""
        assert self.proc is not None
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
            self.proc.kill()
            self.proc.wait()
        took, exited = time.monotonic() - sent, time.time()
        stopping = self.events("daemon.stopping")
        stopped = self.events("daemon.stopped")
        return {
            "sigterm_to_exit_s": round(took, 2),
            # What is left after the daemon's own stop: the interpreter's shutdown.
            "stopped_to_exit_s": round(exited - _epoch(stopped[-1]["timestamp"]), 2)
            if stopped
            else None,
            "exit_code": code,
            "worker_abandoned": bool(self.events("worker.abandoned")),
            "longest_iteration_ms": stopping[-1].get("longest_iteration_ms") if stopping else None,
            "slow_iterations_ms": [e.get("ms") for e in self.events("loop.slow_iteration")],
            "slow_iterations_in_window_ms": [
                e.get("ms")
                for e in self.events("loop.slow_iteration")
                if _epoch(e.get("timestamp")) >= self.window_epoch
            ],
            "embed_chunks_ms": _spread(
                [e["ms"] for e in self.events("batch.progress") if e.get("state") == "imported"]
            ),
            "worker_stalled": len(self.events("worker.stalled")),
            "step_failures": len(self.events("loop.step_failed")),
            "stderr_tail": self.err_path.read_text(errors="replace")[-500:],
        }

    def finish(self, window: float, during: str, **facts: Any) -> dict[str, Any]:
        """End a scenario: the watchdog gaps since ``window``, SIGTERM timed, the load."""
        pings = self.notify.gaps(window, time.monotonic())
        stop = self.terminate()
        load = self.load.summary()
        return {"during": during, **facts, "watchdog": pings, "stop": stop, "load": load}

    def close(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()
        self.notify.close()


def _epoch(timestamp: str | None) -> float:
    """A log line's ISO timestamp as seconds since the epoch (0 if absent)."""
    if not timestamp:
        return 0.0
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 1),
        "max": round(max(values), 1),
    }


@contextlib.contextmanager
def daemon(
    root: Path, name: str, env: dict[str, str], args: argparse.Namespace
) -> Iterator[DaemonRun]:
    """A :class:`DaemonRun` on ``root`` (logs under ``<work>/logs-<name>``), killed at the
    end if still running."""
    logs = args.work / f"logs-{name}"
    if args.chunk_texts:
        env = {**env, "INBOXD_WORKER__CHUNK_TEXTS": str(args.chunk_texts)}
        logs = logs.with_name(f"{logs.name}-chunk{args.chunk_texts}")
    logs.mkdir(parents=True, exist_ok=True)
    run = DaemonRun(root, logs, env, args.watchdog_usec)
    try:
        yield run
    finally:
        run.close()


def fresh_root(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    for name in ("inbox", "outbox", "state"):
        (path / name).mkdir(parents=True)
    return path


def readonly(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{root / 'state' / 'inboxd.db'}?mode=ro", uri=True, timeout=10)


def scalar(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def passed_through(conn: sqlite3.Connection, state: str) -> int:
    """Batches that have reached ``state`` at some point."""
    return int(
        scalar(conn, "SELECT count(DISTINCT batch_id) FROM transitions WHERE to_state = ?", [state])
    )


# -- the worker's situations -----------------------------------------------------------


def _gemini_env(fake: Any, timeout_s: float) -> dict[str, str]:
    """The daemon's env for Gemini embeddings from the loopback fake."""
    return {
        "INBOXD_EMBEDDINGS__PROVIDER": "gemini",
        "INBOXD_GEMINI__BASE_URL": fake.url,
        "INBOXD_GEMINI__TIMEOUT_SECONDS": str(timeout_s),
        "GEMINI_API_KEY": fake.api_key or "",
    }


def deliver(root: Path, indicator: Any, pairs: int, seed: int, tag: str = "") -> tuple[str, float]:
    """Drop one corpus file (temp name, then rename); its relative path and drop time."""
    rows = corpus.pairs_for(indicator, pairs, seed=seed, peers=corpus._peers(indicator), tag=tag)
    path = corpus.file_path(root, indicator, suffix=tag)
    data = corpus.envelope(indicator, rows)
    dropped = time.time()
    corpus.drop_atomically(path, data)
    return path.relative_to(root).as_posix(), dropped


def time_drops(
    run: DaemonRun, conn: sqlite3.Connection, spare: list[Any], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Drop ``args.drops`` files one after another; each timed to its ``imported``."""
    rows = []
    for n in range(args.drops):
        relpath, dropped = deliver(
            run.root, spare[n % len(spare)], args.drop_pairs, args.seed, f"drop{n:02d}"
        )
        at = run.wait(partial(_transition_at, conn, relpath, "imported"), 120, relpath)
        seen = time.time()
        detected = _transition_at(conn, relpath, "detected") or dropped
        rows.append(
            {
                "drop": n + 1,
                "path": relpath,
                "detected_s": round(detected - dropped, 3),
                "imported_s": round(at - dropped, 3),
                "seen_imported_s": round(seen - dropped, 3),
            }
        )
        print(f"  drop {n + 1}: imported {rows[-1]['imported_s']:.2f} s after the drop", flush=True)
        time.sleep(args.pause)
    return rows


def _transition_at(conn: sqlite3.Connection, relpath: str, state: str) -> float | None:
    row = conn.execute(
        "SELECT t.at FROM transitions t JOIN batches b ON b.id = t.batch_id"
        " WHERE b.path = ? AND t.to_state = ? ORDER BY t.id DESC LIMIT 1",
        [relpath, state],
    ).fetchone()
    return None if row is None else float(row[0])


def intake_embedding(args: argparse.Namespace) -> dict[str, Any]:
    """80-pair drops while a 17,000-pair backlog is being embedded by the local model."""
    root = fresh_root(args.work / "intake-embedding")
    staging = fresh_root(args.work / "intake-embedding-staging")
    files = corpus.write_corpus(staging, args.backlog, files=args.files, seed=args.seed)
    spare = corpus.indicators(len(corpus.load_catalog().indicators))[args.files :]
    env = {"INBOXD_WATCH__SETTLE_SECONDS": str(args.settle)}
    with daemon(root, "intake-embedding", env, args) as run:
        run.start()
        conn = readonly(root)
        for path in files:  # the backlog arrives as agents deliver: renamed into place
            target = root / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)
        run.wait(lambda: passed_through(conn, "imported") >= len(files), 900, "backlog imported")
        run.wait(lambda: scalar(conn, "SELECT count(*) FROM embeddings"), 900, "first chunk")
        embedded_before = scalar(conn, "SELECT count(*) FROM embeddings")
        window = run.mark_window()
        drops = time_drops(run, conn, spare, args)
        still_embedding = scalar(
            conn,
            "SELECT count(*) FROM batches WHERE state = 'imported' AND path NOT LIKE '%drop%'",
        )
        embedded_after = scalar(conn, "SELECT count(*) FROM embeddings")
        conn.close()
        return run.finish(
            window,
            "embedding",
            backlog_pairs=args.backlog,
            backlog_files=len(files),
            backlog_batches_still_embedding_at_sigterm=still_embedding,
            texts_embedded_during_drops=embedded_after - embedded_before,
            drops=drops,
        )


@contextlib.contextmanager
def hung_api(
    args: argparse.Namespace, name: str, env: dict[str, str]
) -> Iterator[tuple[DaemonRun, Any]]:
    """A daemon whose worker is blocked: a loopback Gemini hangs every embedding call,
    and a first file has made one. Yields the running daemon and the fake."""
    from gemini_fake import FakeGemini

    root = fresh_root(args.work / name)
    last = corpus.indicators(len(corpus.load_catalog().indicators))[-1]
    with FakeGemini() as fake:
        fake.hang(match="*mbed*", times=None, seconds=args.hang_seconds)
        with daemon(root, name, {**env, **_gemini_env(fake, args.timeout)}, args) as run:
            run.start()
            deliver(root, last, 80, args.seed, "first")
            run.wait(lambda: fake.requests_to("*mbed*"), 120, "a hung embedding call")
            yield run, fake


def intake_hung_api(args: argparse.Namespace) -> dict[str, Any]:
    """80-pair drops while every Gemini embedding call hangs."""
    env = {"INBOXD_WATCH__SETTLE_SECONDS": str(args.settle)}
    with hung_api(args, "intake-hung-api", env) as (run, fake):
        conn = readonly(run.root)
        window = run.mark_window()
        drops = time_drops(run, conn, corpus.indicators(args.drops), args)
        conn.close()
        return run.finish(
            window,
            "hung-api",
            gemini_timeout_s=args.timeout,
            hung_requests=len(fake.requests_to("*mbed*")),
            drops=drops,
        )


def bench_intake(args: argparse.Namespace) -> dict[str, Any]:
    """1 and 2: a new file imported within settle + 1 s, and SIGTERM to exit 0 in 5 s."""
    runs = {"embedding": intake_embedding, "hung-api": intake_hung_api}
    chosen = list(runs) if args.during == "both" else [args.during]
    results: dict[str, Any] = {"settle_s": args.settle, "runs": {}}
    ok = True
    for name in chosen:
        print(f"-- intake while {name} (settle {args.settle} s) --", flush=True)
        result = runs[name](args)
        results["runs"][name] = result
        ok &= report_intake(name, result, args.settle)
    results["pass"] = ok
    save(args, f"intake-{args.during}", results)
    return results


def report_intake(name: str, result: dict[str, Any], settle: float) -> bool:
    latencies = [d["imported_s"] for d in result["drops"]]
    stop = result["stop"]
    print(
        table(
            ["drop", "batch created (settled) s", "imported s", "seen by poller s"],
            [
                [d["drop"], d["detected_s"], d["imported_s"], d["seen_imported_s"]]
                for d in result["drops"]
            ],
        )
    )
    print(
        f"SIGTERM -> exit {stop['exit_code']} in {stop['sigterm_to_exit_s']} s"
        f" ({stop['stopped_to_exit_s']} s of it after daemon.stopped; worker abandoned:"
        f" {stop['worker_abandoned']}); supervisor's longest iteration"
        f" {stop['longest_iteration_ms']} ms, {len(stop['slow_iterations_ms'])} over 1 s"
        f" ({len(stop['slow_iterations_in_window_ms'])} during the drops); embedding chunks"
        f" {stop['embed_chunks_ms']} ms;"
        f" watchdog max gap {result['watchdog']['max_gap_s']} s; load {result['load']}"
    )
    target = settle + INTAKE_SLACK_S
    ok = verdict(
        f"{name}: drop -> imported p50", statistics.median(latencies), target, at_most=True
    )
    print(f"      max {max(latencies):.2f} s (target applies to the p50)")
    ok &= verdict(
        f"{name}: SIGTERM -> exit", stop["sigterm_to_exit_s"], STOP_TARGET_S, at_most=True
    )
    return ok and stop["exit_code"] == 0


# -- the watchdog ---------------------------------------------------------------------------


def watchdog_file(args: argparse.Namespace) -> dict[str, Any]:
    """One 5,000-pair file embedded (and indexed) by the local model."""
    root = fresh_root(args.work / "watchdog-file")
    with daemon(root, "watchdog-file", {}, args) as run:
        run.start()
        conn = readonly(root)
        window = run.mark_window()
        relpath, _ = deliver(root, corpus.indicators(1)[0], args.file_pairs, args.seed)
        reached = _wait_or_bound(
            run, lambda: _transition_at(conn, relpath, "indexed"), args.max_seconds
        )
        embedded = scalar(conn, "SELECT count(*) FROM embeddings")
        conn.close()
        return run.finish(
            window,
            "file",
            file_pairs=args.file_pairs,
            indexed=reached,
            texts_embedded=embedded,
            texts_per_s=round(embedded / (time.monotonic() - window), 2),
        )


def _wait_or_bound(run: DaemonRun, predicate: Callable[[], Any], bound: float) -> bool:
    """Wait for ``predicate`` up to ``bound`` seconds; False if the bound came first."""
    try:
        run.wait(predicate, bound, "the end of the work")
    except TimeoutError:
        return False
    return True


def watchdog_corpus(args: argparse.Namespace) -> dict[str, Any]:
    """The corpus run (ALL_SESSIONS_COMPLETE.txt) over the prepared corpus root."""
    prepared = prepare_corpus(args)
    root = copy_root(prepared, args.work / f"watchdog-corpus-{args.corpus_pairs}")
    with daemon(root, "watchdog-corpus", {}, args) as run:
        started = time.monotonic()
        run.start()
        ready_s = time.monotonic() - started
        conn = readonly(root)
        window = run.mark_window()
        signal_path = root / "outbox" / corpus.AGENT / "ALL_SESSIONS_COMPLETE.txt"
        corpus.drop_atomically(signal_path, b"all sessions complete\n")
        # With --sigterm-after the run is stopped part-way, to time SIGTERM during it.
        handled = _wait_or_bound(
            run,
            lambda: scalar(conn, "SELECT count(*) FROM signals WHERE handled_at IS NOT NULL"),
            args.sigterm_after or args.max_seconds,
        )
        conn.close()
        decided = run.events("dedup.decided")
        return run.finish(
            window,
            "corpus",
            corpus_pairs=args.corpus_pairs,
            start_to_ready_s=round(ready_s, 1),
            corpus_run_done=handled,
            signal_to_handled_s=round(time.monotonic() - window, 1),
            dedup_decided=decided[-1] if decided else None,
            hooks_failed=run.events("corpus.hook_failed"),
        )


def watchdog_hung_api(args: argparse.Namespace) -> dict[str, Any]:
    """A file whose embedding calls hang, watched for ``--hang-window`` seconds."""
    with hung_api(args, "watchdog-hung-api", {}) as (run, fake):
        window = run.mark_window()
        time.sleep(args.hang_window)
        return run.finish(
            window,
            "hung-api",
            gemini_timeout_s=args.timeout,
            hung_requests=len(fake.requests_to("*mbed*")),
            gemini_retries_logged=len(run.events("gemini.retry")),
        )


def bench_watchdog(args: argparse.Namespace) -> dict[str, Any]:
    """3: the largest gap between watchdog pings, against WatchdogSec."""
    runs = {"file": watchdog_file, "corpus": watchdog_corpus, "hung-api": watchdog_hung_api}
    chosen = list(runs) if args.during == "all" else [args.during]
    watchdog_s = args.watchdog_usec / 1_000_000
    results: dict[str, Any] = {"watchdog_s": watchdog_s, "runs": {}}
    ok = True
    for name in chosen:
        print(f"-- watchdog during {name} (WatchdogSec {watchdog_s:g} s) --", flush=True)
        result = runs[name](args)
        results["runs"][name] = result
        stop, pings = result["stop"], result["watchdog"]
        print(
            f"{pings['pings']} pings in {pings['window_s']} s, max gap {pings['max_gap_s']} s,"
            f" p99 {pings['p99_gap_s']} s; worker.stalled {stop['worker_stalled']};"
            f" supervisor's longest iteration {stop['longest_iteration_ms']} ms"
            f" ({len(stop['slow_iterations_ms'])} over 1 s,"
            f" {len(stop['slow_iterations_in_window_ms'])} in the window); SIGTERM -> exit"
            f" {stop['exit_code']} in {stop['sigterm_to_exit_s']} s; load {result['load']}"
        )
        ok &= verdict(f"{name}: largest watchdog gap", pings["max_gap_s"], watchdog_s, at_most=True)
    results["pass"] = ok
    save(args, f"watchdog-{args.during}", results)
    return results


# -- the corpus root -----------------------------------------------------------------------


def prepare_corpus(args: argparse.Namespace) -> Path:
    """The ``--corpus-pairs`` root, refined (every batch indexed), built once, in-process."""
    import numpy as np

    from daemon.core.config import load_config
    from daemon.core.textid import text_hash
    from daemon.runtime.service import Service
    from daemon.store import corpus as q

    root = args.work / f"corpus-{args.corpus_pairs}p"
    marker = root / "state" / "bench-ready.json"
    if marker.exists() and not args.rebuild:
        return root
    started, load_before = time.monotonic(), loadavg()
    fresh_root(root)
    print(f"preparing {args.corpus_pairs:,} pairs at {root}", flush=True)
    quiet_logging()
    corpus.write_corpus(root, args.corpus_pairs, files=args.files, seed=args.seed)
    overrides = {"watch": {"settle_seconds": 0.0}, "search": {"serve": False}}
    service = Service(load_config(root, overrides=overrides))
    pipeline = service.start(watch=False)
    phases: dict[str, float] = {}
    mark = time.monotonic()
    while pipeline.step(time.time()) or not pipeline.idle():
        pass
    phases["intake_s"] = time.monotonic() - mark
    ctx = service.worker_services()
    db = ctx.store.db
    texts = {
        text_hash(t)
        for q_text, a_text in db.execute("SELECT question, answer FROM pairs")
        for t in (q_text, a_text)
    }
    rng = np.random.default_rng(args.seed)
    hashes = sorted(texts)
    mark = time.monotonic()
    for start in range(0, len(hashes), 20_000):  # random unit vectors, not the model's
        chunk = hashes[start : start + 20_000]
        vectors = rng.standard_normal((len(chunk), DIM), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        with ctx.store.transaction() as tx:
            q.save_embeddings(tx, ctx.embedder.model_id, dict(zip(chunk, vectors, strict=True)), 0)
    phases["vectors_s"] = time.monotonic() - mark
    mark = time.monotonic()
    service.run_once()  # the worker's stages: nothing left to embed; dedupe, score, index
    phases["worker_stages_s"] = time.monotonic() - mark
    states = dict(db.execute("SELECT state, count(*) FROM batches GROUP BY state").fetchall())
    index_size = len(ctx.index)
    service.stop()
    facts = {
        "pairs": args.corpus_pairs,
        "texts_with_random_vectors": len(hashes),
        "batches": states,
        "index_size": index_size,
        "phases_s": {k: round(v, 1) for k, v in phases.items()},
        "total_s": round(time.monotonic() - started, 1),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }
    marker.write_text(json.dumps(facts, indent=2) + "\n")
    print(f"prepared: {facts}", flush=True)
    return root


def bench_prepare(args: argparse.Namespace) -> dict[str, Any]:
    root = prepare_corpus(args)
    return {"pass": True, **json.loads((root / "state" / "bench-ready.json").read_text())}


# -- reporting and the command line ------------------------------------------------------------


def save(args: argparse.Namespace, name: str, result: dict[str, Any]) -> None:
    folder = args.work / "results"
    folder.mkdir(parents=True, exist_ok=True)
    stamped = {
        "benchmark": name,
        "at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "args": vars(args),
        **result,
    }
    stamped.setdefault("machine", machine())
    path = folder / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(stamped, indent=2, default=str) + "\n")
    print(f"(saved {path})")


def parse(argv: Sequence[str]) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder")
    common.add_argument("--seed", type=int, default=7)
    common.add_argument("--files", type=int, default=215, help="files a corpus is split into")
    common.add_argument(
        "--watchdog-usec", type=int, default=2_000_000, help="WATCHDOG_USEC (default 2 s)"
    )
    common.add_argument(
        "--timeout", type=float, default=30.0, help="[gemini] timeout_seconds (hung API runs)"
    )
    common.add_argument(
        "--hang-seconds", type=float, default=600.0, help="how long a hung call holds"
    )
    common.add_argument("--corpus-pairs", type=int, default=100_000)
    common.add_argument(
        "--chunk-texts", type=int, help="[worker] chunk_texts (default: the shipped 256)"
    )
    common.add_argument("--rebuild", action="store_true", help="rebuild the corpus root")
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="bench", required=True)
    intake = sub.add_parser("intake", parents=[common], help="1+2: intake and SIGTERM")
    intake.add_argument("--during", choices=["embedding", "hung-api", "both"], default="both")
    intake.add_argument("--drops", type=int, default=10)
    intake.add_argument("--drop-pairs", type=int, default=80)
    intake.add_argument("--settle", type=float, default=2.0, help="[watch] settle_seconds")
    intake.add_argument("--pause", type=float, default=1.0, help="seconds between drops")
    intake.add_argument("--backlog", type=int, default=17_000, help="pairs being embedded")
    watchdog = sub.add_parser("watchdog", parents=[common], help="3: no missed watchdog")
    watchdog.add_argument("--during", choices=["file", "corpus", "hung-api", "all"], default="all")
    watchdog.add_argument("--file-pairs", type=int, default=5_000)
    watchdog.add_argument(
        "--max-seconds", type=float, default=1800, help="bound on a file or corpus run"
    )
    watchdog.add_argument(
        "--hang-window", type=float, default=120, help="seconds watched while the API hangs"
    )
    watchdog.add_argument(
        "--sigterm-after", type=float, help="corpus: SIGTERM this many seconds into the run"
    )
    sub.add_parser("prepare", parents=[common], help="build the corpus root only")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine().items()))
    print(f"load average: {loadavg()}", flush=True)
    benches = {"intake": bench_intake, "watchdog": bench_watchdog, "prepare": bench_prepare}
    result = benches[args.bench](args)
    return 0 if result.get("pass") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
