"""The runtime's promises: the supervisor never waits for the worker, SIGTERM ends
long work promptly, a step that raises is retried and never fatal, SIGHUP is all or
nothing, and systemd's watchdog is fed only while the worker shows signs of life."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    Daemon,
    assert_consistent,
    db_path,
    drop,
    encode_qa,
    qa_pairs,
    query,
    run_cli,
    scalar,
    wait_until,
)
from structlog.testing import capture_logs

from daemon.core.config import load_config
from daemon.core.records import Batch
from daemon.runtime.service import Service
from daemon.services import Services
from daemon.stages import STAGES, Stage
from daemon.states import BatchState


def _batch_reached(root: Path, path: str, state: str) -> bool:
    """Whether the newest batch of ``path`` has passed through ``state``."""
    return bool(
        scalar(
            root,
            "SELECT count(*) FROM transitions t JOIN batches b ON b.id = t.batch_id"
            " WHERE b.path = ? AND t.to_state = ?",
            [path, state],
        )
    )


def _embedded_twice(root: Path) -> int:
    """Texts with more than one stored vector for the same model (must be none)."""
    return int(
        scalar(
            root,
            "SELECT count(*) FROM (SELECT text_hash FROM embeddings"
            " GROUP BY text_hash, model HAVING count(*) > 1)",
        )
    )


# -- the worker does not hold up the supervisor ---------------------------------------


def test_a_long_embedding_holds_up_neither_a_new_file_nor_sigterm(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """While a 1,500-pair file is embedded chunk by chunk, a new file is imported at once
    and SIGTERM exits 0 within 5 s; after a restart the big file finishes and no text is
    embedded twice."""
    daemon = make_daemon(root, INBOXD_WORKER__CHUNK_TEXTS="32").start()
    big, small = "outbox/droid/big_qa_pairs.json", "outbox/droid/small_qa_pairs.json"
    drop(root / big, encode_qa(qa_pairs("big", 1500)))
    daemon.wait_until(lambda: _batch_reached(root, big, "imported"), what="big imported")
    daemon.wait_until(  # the worker is inside the big file's embedding
        lambda: scalar(root, "SELECT count(*) FROM embeddings") > 0, what="a first chunk"
    )
    dropped = time.monotonic()
    drop(root / small, encode_qa(qa_pairs("small", 5)))
    daemon.wait_until(lambda: _batch_reached(root, small, "imported"), what="small imported")
    assert time.monotonic() - dropped < 10
    assert not _batch_reached(root, big, "embedded"), "the big file finished too soon to tell"

    sent = time.monotonic()
    assert daemon.terminate() == 0
    assert time.monotonic() - sent < 5

    daemon.start()
    daemon.wait_done([big, small], timeout=600)
    assert daemon.terminate() == 0
    assert _embedded_twice(root) == 0
    assert scalar(root, "SELECT count(*) FROM pairs") == 1505


def test_a_database_locked_by_another_writer_delays_intake_but_never_ends_the_daemon(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """Another process holds the write lock for 3 s (longer than the daemon's busy
    timeout): the file dropped meanwhile is taken once the lock is gone, and the daemon
    stays up throughout."""
    daemon = make_daemon(
        root, log_level="debug", INBOXD_DATABASE__BUSY_TIMEOUT_SECONDS="0.2"
    ).start()
    path = "outbox/droid/rsi_qa_pairs.json"
    blocker = sqlite3.connect(db_path(root), timeout=5, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        drop(root / path, encode_qa(qa_pairs("rsi", 4)))
        # The lock outlasts several of the daemon's attempts: the first, then a retry
        # after each of two rescans.
        daemon.wait_for("file.deferred", path=path)
        daemon.wait_rescans(2)
        assert daemon.alive
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    daemon.wait_done([path])
    assert daemon.alive
    assert daemon.terminate() == 0
    assert scalar(root, "SELECT count(*) FROM pairs") == 4


# -- SIGHUP: all or nothing ------------------------------------------------------------


def _long_question_pairs(prefix: str) -> bytes:
    pairs = qa_pairs(prefix, 2)
    for pair in pairs:
        pair["question"] = f"{prefix}: " + "how is this indicator read in practice " * 3
    return encode_qa(pairs)


def test_sighup_with_a_changed_config_reexecutes_and_the_new_value_holds(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """A changed inboxd.toml and SIGHUP: config.reloaded names the changed key, the same
    process starts again (same pid, lock taken again), and the new limit applies."""
    daemon = make_daemon(root).start()
    first = "outbox/droid/before_qa_pairs.json"
    drop(root / first, _long_question_pairs("before"))
    daemon.wait_done([first])
    (root / "inboxd.toml").write_text("[limits]\nmax_question_chars = 40\n")
    daemon.proc.send_signal(1)  # type: ignore[union-attr]
    reloaded = daemon.wait_for("config.reloaded")
    assert reloaded["ok"] is True
    assert reloaded["changed"] == ["limits.max_question_chars"]
    daemon.wait_until(lambda: len(daemon.events("daemon.ready")) == 2, what="second start")
    assert daemon.alive
    assert (root / "state" / "inboxd.lock").read_text().strip() == str(daemon.pid)

    second = "outbox/droid/after_qa_pairs.json"
    drop(root / second, _long_question_pairs("after"))
    daemon.wait_until(
        lambda: _batch_reached(root, second, "rejected"), what="the long questions refused"
    )
    assert daemon.terminate() == 0


def test_sighup_with_a_broken_config_keeps_the_running_one(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """A config that does not load is logged (ok false) and the daemon goes on as it was,
    without restarting; an unchanged config rebuilds nothing."""
    daemon = make_daemon(root).start()
    (root / "inboxd.toml").write_text("[limits\nmax_question_chars = ")
    daemon.proc.send_signal(1)  # type: ignore[union-attr]
    assert daemon.wait_for("config.reloaded")["ok"] is False
    (root / "inboxd.toml").write_text("")
    daemon.proc.send_signal(1)  # type: ignore[union-attr]
    daemon.wait_until(lambda: len(daemon.events("config.reloaded")) == 2, what="second reload")
    assert daemon.events("config.reloaded")[1]["changed"] == []
    path = "outbox/droid/sma_qa_pairs.json"
    drop(root / path, encode_qa(qa_pairs("sma", 3)))
    daemon.wait_done([path])
    assert len(daemon.events("daemon.started")) == 1
    assert daemon.terminate() == 0


# -- the watchdog follows the worker ----------------------------------------------------


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event a blocking test stage waits on; set at the end so no thread is left."""
    event = threading.Event()
    yield event
    event.set()


def _pings(sock: Any, seconds: float) -> int:
    """WATCHDOG=1 datagrams received on the fake NOTIFY_SOCKET within ``seconds``."""
    count, end = 0, time.monotonic() + seconds
    sock.settimeout(0.05)
    while time.monotonic() < end:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        count += b"WATCHDOG=1" in data
    return count


def test_the_watchdog_is_fed_while_the_worker_lives_and_not_once_it_stalls(
    root: Path,
    notify_socket: tuple[Any, str],
    monkeypatch: pytest.MonkeyPatch,
    release: threading.Event,
) -> None:
    """An idle worker keeps the pings coming; a worker stuck in a step past its stall
    bound stops them (worker.stalled is logged), so systemd restarts a hung daemon."""
    sock, address = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s

    def stuck(batch: Batch, ctx: Services, now: float) -> Batch:
        release.wait(30)
        return batch

    stages: dict[BatchState, Stage] = {**STAGES, BatchState.IMPORTED: stuck}
    config = load_config(
        root,
        overrides={
            "watch": {"settle_seconds": 0.1, "poll_seconds": 0.05},
            "worker": {"stall_seconds": 0.5, "stop_seconds": 0.5},
            "search": {"serve": False},
        },
    )
    service = Service(config, stages=stages)
    service.start()
    loop = threading.Thread(target=service.run, name="supervisor")
    with capture_logs() as logs:
        loop.start()
        try:
            assert _pings(sock, 1.0) >= 3  # idle: fed
            drop(root / "outbox/droid/cci_qa_pairs.json", encode_qa(qa_pairs("cci", 2)))
            wait_until(lambda: any(e["event"] == "worker.stalled" for e in logs), 15)
            _pings(sock, 0.2)  # what was sent before the stall
            assert _pings(sock, 1.0) == 0  # stuck past its bound: starved
        finally:
            service.stop_requested.set()
            release.set()
            loop.join(10)
            service.stop()
    assert not loop.is_alive()


def test_a_step_that_raises_is_logged_retried_and_the_daemon_goes_on(root: Path) -> None:
    """A worker step that raises an unexpected error once is logged with its traceback
    and the batch is retried; everything ends indexed."""
    failures = iter([RuntimeError("boom")])

    def flaky(batch: Batch, ctx: Services, now: float) -> Batch:
        error = next(failures, None)
        if error is not None:
            raise error
        return STAGES[BatchState.IMPORTED](batch, ctx, now)

    drop(root / "outbox/droid/obv_qa_pairs.json", encode_qa(qa_pairs("obv", 3)))
    config = load_config(
        root,
        overrides={"watch": {"settle_seconds": 0.0}, "retry": {"base_seconds": 0.01}},
    )
    service = Service(config, stages={**STAGES, BatchState.IMPORTED: flaky})
    service.start(watch=False)
    try:
        with capture_logs() as logs:

            def indexed() -> bool:
                service.run_once()
                return query(root, "SELECT state FROM batches") == [("indexed",)]

            wait_until(indexed, 60, message="the batch to be indexed despite the failure")
    finally:
        service.stop()
    assert query(root, "SELECT state FROM batches") == [("indexed",)]
    (failed,) = [
        e for e in logs if e["event"] == "batch.retry_scheduled" and "boom" in e.get("error", "")
    ]
    assert failed["state"] == "imported"


# -- a hung API and SIGKILLs in the middle of long work ---------------------------------


def test_a_hung_gemini_api_holds_up_neither_intake_nor_sigterm(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """Every embedding request hangs: a new file is still imported at once, SIGTERM ends
    the daemon with exit 0 within 5 s (the call in flight abandoned), and after a restart
    with the API back every pair is embedded once and indexed."""
    from gemini_fake import FakeGemini

    with FakeGemini() as fake:
        fake.hang(match="*mbed*", times=None, seconds=60)
        env = {
            "INBOXD_EMBEDDINGS__PROVIDER": "gemini",
            "INBOXD_GEMINI__BASE_URL": fake.url,
            "INBOXD_GEMINI__TIMEOUT_SECONDS": "30",
            "GEMINI_API_KEY": fake.api_key or "",
        }
        daemon = make_daemon(root, **env).start()
        first, second = "outbox/droid/rsi_qa_pairs.json", "outbox/droid/macd_qa_pairs.json"
        drop(root / first, encode_qa(qa_pairs("rsi", 5)))
        daemon.wait_until(lambda: fake.requests_to("*mbed*"), what="a hung request")
        dropped = time.monotonic()
        drop(root / second, encode_qa(qa_pairs("macd", 5)))
        daemon.wait_until(lambda: _batch_reached(root, second, "imported"), what="imported")
        assert time.monotonic() - dropped < 10

        sent = time.monotonic()
        assert daemon.terminate() == 0
        assert time.monotonic() - sent < 5
        assert daemon.events("worker.abandoned")

        fake.clear_faults()
        daemon.start()
        daemon.wait_until(
            lambda: query(root, "SELECT DISTINCT state FROM batches") == [("indexed",)],
            what="everything indexed",
        )
        assert daemon.terminate() == 0
    assert _embedded_twice(root) == 0
    assert scalar(root, "SELECT count(*) FROM pairs") == 10


def test_sigkill_between_embedding_chunks_loses_nothing_and_embeds_nothing_twice(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """A 300-pair file embedded 16 texts at a time, the daemon SIGKILLed four times in
    the middle and restarted: every pair is stored once, every text embedded once, the
    batch indexed and the saved index holding exactly the active pairs."""
    daemon = make_daemon(root, INBOXD_WORKER__CHUNK_TEXTS="16")
    path = "outbox/droid/adx_qa_pairs.json"
    drop(root / path, encode_qa(qa_pairs("adx", 300)))
    seen = 0
    for _ in range(4):
        daemon.start()
        daemon.wait_until(
            lambda seen=seen: scalar(root, "SELECT count(*) FROM embeddings") > seen + 16,
            timeout=300,
            what="another chunk",
        )
        daemon.kill()
        seen = scalar(root, "SELECT count(*) FROM embeddings")
        assert _embedded_twice(root) == 0
    daemon.start()
    daemon.wait_until(
        lambda: query(root, "SELECT state FROM batches") == [("indexed",)],
        timeout=600,
        what="indexed",
    )
    assert daemon.terminate() == 0
    assert scalar(root, "SELECT count(*) FROM pairs") == 300
    assert _embedded_twice(root) == 0
    assert_consistent(root)
    doctor = json.loads(run_cli(root, "doctor", "--skip-model", "--json").stdout)
    (index_check,) = [c for c in doctor["checks"] if c["name"] == "index"]
    assert index_check["outcome"] == "ok", index_check
