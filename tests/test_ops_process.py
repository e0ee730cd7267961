"""Operating a real ``inboxd run`` process: the sd_notify protocol over a real socket,
SIGTERM in the middle of a long import, SIGHUP reloads (good and broken config),
``inboxd backup`` while the daemon writes, and the rotating JSON log file."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import (
    TIMEOUT,
    Daemon,
    assert_consistent,
    batches,
    drop,
    encode_qa,
    poll_until,
    run_cli,
    scalar,
)

from daemon.core.config import CONFIG_FILE_NAME
from daemon.core.logs import Event, configure_logging, get_logger

#: The exit a drained daemon must make within this long of SIGTERM (systemd allows 90 s).
STOP_TIMEOUT = 30.0


# -- helpers ------------------------------------------------------------------------------


class Messages:
    """Every sd_notify datagram received, each split into its KEY=VALUE assignments."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.received: list[dict[str, str]] = []

    def wait_for(self, key: str, value: str = "1", timeout: float = TIMEOUT) -> dict[str, str]:
        """Read datagrams until one assigns ``key=value``; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {key}={value} within {timeout:.0f}s; got {self.received}")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            message = dict(line.split("=", 1) for line in data.decode().split("\n"))
            self.received.append(message)
            if message.get(key) == value:
                return message

    def count(self, key: str, value: str = "1") -> int:
        return sum(m.get(key) == value for m in self.received)


#: Where each file's answers start: files 0, 1 and 2 between them use all 150 answers.
_SHIFTS = [0, 50, 100] + [x for x in range(150) if x not in (0, 50, 100)]


def distinct_pairs(file_number: int, count: int) -> list[dict[str, Any]]:
    """``count`` (at most 50) pairs no other file (number < 150) has.

    Pair i of file n asks question i and gives answer (i + shift(n)) mod 150: every
    (file, i) is another (question, answer) combination, so another pair (pairs are
    keyed by the hash of both), yet 200 texts make up all 7,500 pairs, and once files
    0-2 are in, every text is embedded already (embeddings are cached by text). So a
    big corpus costs seconds of CPU, and the tests stay about the daemon, not the model.
    """
    shift = _SHIFTS[file_number]
    return [
        {
            "question": f"How is indicator number {i} computed from daily closing prices?",
            "answer": f"Answer variant {(i + shift) % 150}: average the last closes, then"
            " compare the result with the previous value to read the trend.",
        }
        for i in range(count)
    ]


def write_config(root: Path, text: str) -> None:
    """Replace the root's config file the way an editor does (temp file, rename)."""
    temp = root / f".{CONFIG_FILE_NAME}.tmp"
    temp.write_text(text)
    temp.replace(root / CONFIG_FILE_NAME)


def detected_batches(daemon: Daemon) -> list[str]:
    return [e["path"] for e in daemon.events("file.detected") if "batch" in e]


# -- the notify protocol ------------------------------------------------------------------


@pytest.mark.slow
def test_daemon_speaks_sd_notify_ready_watchdog_and_stopping_and_exits_0(
    root: Path,
    notify_socket: tuple[socket.socket, str],
    make_daemon: Callable[..., Daemon],
) -> None:
    """Under a NOTIFY_SOCKET with WATCHDOG_USEC=2 s the daemon sends READY=1 (with a
    STATUS), then WATCHDOG=1 about every second, then STOPPING=1 on SIGTERM, exit 0."""
    sock, path = notify_socket
    messages = Messages(sock)
    daemon = make_daemon(root, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000")
    daemon.start(wait_ready=False)

    ready = messages.wait_for("READY")
    assert "pairs" in ready["STATUS"]
    assert messages.count("WATCHDOG") == 0  # nothing pinged before it was ready
    started = time.monotonic()
    messages.wait_for("WATCHDOG")
    messages.wait_for("WATCHDOG")
    messages.wait_for("WATCHDOG")
    elapsed = time.monotonic() - started
    # The first ping comes at once, the next two one interval (1 s) apart each.
    assert 1.5 <= elapsed < 6, f"3 pings took {elapsed:.1f}s with a 1 s interval"
    assert daemon.events("daemon.ready")

    daemon.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    messages.wait_for("STOPPING")
    assert daemon.proc.wait(STOP_TIMEOUT) == 0  # type: ignore[union-attr]
    assert daemon.events("daemon.stopped")


# -- SIGTERM during a long import ---------------------------------------------------------


@pytest.mark.slow
def test_sigterm_during_a_long_import_exits_0_consistent_and_the_next_start_finishes(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """150 files x 50 pairs: SIGTERM in the middle exits 0 within the stop timeout, the
    DB is intact with every batch in its last transition's state, the next start
    indexes everything, and the log (stdout and the rotating file, which match) has
    no per-pair lines."""
    files, per_file = 150, 50
    paths = [f"outbox/droid/ind{n:03d}_qa_pairs.json" for n in range(files)]
    for n, relpath in enumerate(paths):
        drop(root / relpath, encode_qa(distinct_pairs(n, per_file)))
    daemon = make_daemon(root, INBOXD_LOG_FILE="true").start()

    poll_until(lambda: len(daemon.events("batch.transition")) >= 60, timeout=TIMEOUT)
    signalled = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    try:
        code = daemon.proc.wait(STOP_TIMEOUT)  # type: ignore[union-attr]
    except subprocess.TimeoutExpired:
        pytest.fail(f"no exit within {STOP_TIMEOUT}s of SIGTERM: {daemon.describe()}")
    took = time.monotonic() - signalled
    assert code == 0, daemon.describe()
    assert daemon.events("daemon.stopping") and daemon.events("daemon.stopped")
    unfinished = [b for b in batches(root) if b["state"] != "indexed"]
    assert unfinished, "the import finished before SIGTERM: nothing was interrupted"
    assert_consistent(root)  # integrity_check, and each state is its last to_state
    assert daemon.events("daemon.stopped")[0]["unfinished"] == len(unfinished)

    daemon.start()
    daemon.wait_until(
        lambda: len(batches(root)) == files and all(b["state"] == "indexed" for b in batches(root)),
        timeout=TIMEOUT * 2,
        what="every batch indexed after the restart",
    )
    assert daemon.terminate(STOP_TIMEOUT) == 0
    assert_consistent(root)
    assert scalar(root, "SELECT count(*) FROM pairs") == files * per_file
    assert scalar(root, "SELECT count(*) FROM pair_sources") == files * per_file
    assert took < STOP_TIMEOUT

    # Log volume: per batch, file.detected, one line per transition and feedback.written
    # (9 at most), and a few per run; none per pair.
    lines = daemon.all_lines()
    assert len(lines) <= 9 * files + 40, f"{len(lines)} log lines for {files} batches"
    assert {line["event"] for line in lines} <= {str(e) for e in Event}
    # The log file holds the same JSON lines as stdout, across both runs (in either
    # one's order: the supervisor and the worker log from two threads).
    log_file = root / "state" / "logs" / "inboxd.log"
    in_file = [json.loads(x) for x in log_file.read_text().splitlines()]

    def canonical(found: list[dict[str, Any]]) -> list[str]:
        return sorted(json.dumps(line, sort_keys=True) for line in found)

    assert canonical(in_file) == canonical(lines)


# -- SIGHUP -------------------------------------------------------------------------------


@pytest.mark.slow
def test_sighup_reloads_the_config_file_and_a_broken_one_keeps_the_daemon_running(
    root: Path,
    notify_socket: tuple[socket.socket, str],
    make_daemon: Callable[..., Daemon],
) -> None:
    """SIGHUP re-reads inboxd.toml: a longer [watch] settle_seconds holds new files back
    until a second reload shortens it (RELOADING=1, the daemon re-executes, READY=1); a
    broken file logs config.reloaded ok=False and reloads nothing: the daemon keeps the
    old config and works."""
    sock, path = notify_socket
    messages = Messages(sock)
    fast = "[watch]\nsettle_seconds = 0.2\n"
    write_config(root, fast)
    daemon = make_daemon(root, log_level="debug", NOTIFY_SOCKET=path)
    del daemon.env["INBOXD_WATCH__SETTLE_SECONDS"]  # the file must decide, not the env
    daemon.start()
    messages.wait_for("READY")

    def reload(expect_ok: bool) -> dict[str, Any]:
        seen = len(daemon.events("config.reloaded"))
        daemon.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        if expect_ok:
            messages.wait_for("RELOADING")
            messages.wait_for("READY")
        event = daemon.wait_until(
            lambda: daemon.events("config.reloaded")[seen:], what="config.reloaded"
        )[0]
        assert event["ok"] is expect_ok, event
        return dict(event)

    write_config(root, "[watch]\nsettle_seconds = 3600\n")
    reload(expect_ok=True)
    held = "outbox/droid/held_qa_pairs.json"
    drop(root / held, encode_qa(distinct_pairs(0, 3)))
    daemon.wait_rescans(2)  # and many settle windows of the old 0.2 s
    assert held not in detected_batches(daemon), "the reloaded settle window was ignored"

    write_config(root, fast)
    reload(expect_ok=True)
    daemon.wait_done([held])

    write_config(root, "[watch]\nsettle_seconds = -1\n")
    broken = reload(expect_ok=False)
    assert "watch.settle_seconds" in broken["error"]
    write_config(root, "[watch\nnot toml")
    assert "not valid TOML" in reload(expect_ok=False)["error"]
    assert daemon.alive
    after = "outbox/droid/after_qa_pairs.json"
    drop(root / after, encode_qa(distinct_pairs(1, 3)))
    daemon.wait_done([held, after])  # still serving, with the last good config
    assert daemon.terminate() == 0


# -- backup -------------------------------------------------------------------------------


def _open_copy(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


@pytest.mark.slow
def test_backup_while_the_daemon_imports_is_consistent_and_matches_it_when_idle(
    root: Path, tmp_path: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """`inboxd backup` with a running daemon: taken mid-import, the copy passes
    integrity_check and every invariant; taken when idle, into a folder, it is a
    timestamped single file with the live DB's pair count. Doctor agrees meanwhile."""
    daemon = make_daemon(root).start()
    # Enough work that a cold `inboxd backup` process lands in the middle of it.
    files, per_file = 60, 40
    paths = [f"outbox/droid/b{n:02d}_qa_pairs.json" for n in range(files)]
    for n, relpath in enumerate(paths):
        drop(root / relpath, encode_qa(distinct_pairs(n, per_file)))
    # Batches go through the stages oldest first: with 5 indexed, the model is loaded
    # and the daemon is committing a transition every few milliseconds.
    daemon.wait_until(
        lambda: sum(e["state"] == "indexed" for e in daemon.events("batch.transition")) >= 5,
        what="5 batches indexed",
    )

    busy_copy = tmp_path / "busy" / "state" / "inboxd.db"
    busy_copy.parent.mkdir(parents=True)
    result = run_cli(root, "backup", str(busy_copy))
    assert result.returncode == 0, result.stderr
    assert "rebuilt from the DB" in result.stdout  # what to do about the index
    with contextlib.closing(_open_copy(busy_copy)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert_consistent(tmp_path / "busy")  # a coherent snapshot, not a torn copy
    assert any(b["state"] != "indexed" for b in batches(tmp_path / "busy")), (
        "the backup was taken after the import ended: it proves nothing about writes"
    )

    daemon.wait_done(paths)
    daemon.wait_until(
        lambda: all(b["state"] == "indexed" for b in batches(root)), what="all indexed"
    )
    folder = tmp_path / "backups"
    folder.mkdir()
    result = run_cli(root, "backup", str(folder))
    assert result.returncode == 0, result.stderr
    (copy,) = folder.iterdir()
    assert copy.name.startswith("inboxd-") and copy.name.endswith("Z.db")
    with contextlib.closing(_open_copy(copy)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file
        pairs = conn.execute("SELECT count(*) FROM pairs").fetchone()[0]
    assert pairs == scalar(root, "SELECT count(*) FROM pairs") == files * per_file

    again = run_cli(root, "backup", str(copy))
    assert again.returncode == 1 and "already exists" in again.stderr  # never overwritten

    doctor = run_cli(root, "doctor", "--skip-model")
    assert doctor.returncode == 0, doctor.stdout
    assert f"daemon running (pid {daemon.pid})" in doctor.stdout
    assert daemon.alive
    assert daemon.terminate() == 0


# -- the log file, in process --------------------------------------------------------------


def test_log_file_rotates_by_size_and_keeps_the_configured_number_of_files(
    tmp_path: Path,
) -> None:
    """The JSON log file is rotated at max_bytes into .1 .. .N, the oldest dropped; every
    line is one JSON object, whatever the stream's format."""
    path = tmp_path / "logs" / "inboxd.log"
    stream = (tmp_path / "stream.txt").open("w")
    try:
        configure_logging(
            "console", "info", stream, log_file=path, log_file_max_bytes=4096, log_file_backups=2
        )
        log = get_logger()
        for n in range(200):
            log.info(Event.BATCH_TRANSITION, batch=n, state="indexed", path=f"outbox/a/{n}.json")
        log.debug(Event.FILE_DETECTED, path="below the level")
    finally:
        configure_logging()  # closes the file
        structlog.reset_defaults()
        stream.close()
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "inboxd.log",
        "inboxd.log.1",
        "inboxd.log.2",
    ]
    kept = []
    for name in ("inboxd.log.2", "inboxd.log.1", "inboxd.log"):
        file = path.parent / name
        assert file.stat().st_size <= 4096
        kept += [json.loads(line) for line in file.read_text().splitlines()]
    batches_kept = [line["batch"] for line in kept]
    assert batches_kept == list(range(200 - len(kept), 200))  # the newest, in order
    assert all(line["event"] == "batch.transition" and line["level"] == "info" for line in kept)
