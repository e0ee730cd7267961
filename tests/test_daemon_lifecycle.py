"""The daemon's life as a process: one per root, SIGTERM, ``run --once``, ``status --json``
and ``retry`` of a batch that really failed."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    DONE_STATES,
    TIMEOUT,
    Daemon,
    assert_consistent,
    batches,
    copy_tree,
    drop,
    encode_qa,
    imported,
    qa_pairs,
    query,
    run_cli,
)

pytestmark = pytest.mark.slow  # every test here starts daemon processes

EXAMPLE_QA = [
    "outbox/droid/ema_qa_pairs.json",
    "outbox/droid/session_02/sma_qa_pairs.json",
    "outbox/droid/wma_qa_pairs.jsonl",
]


def test_second_daemon_on_the_same_root_exits_3_naming_the_running_pid_and_root(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """A second run on a served root exits 3 naming the pid and root; the first serves on."""
    first = make_daemon(root).start()

    for args in (["run"], ["run", "--once"]):
        second = run_cli(root, *args, timeout=30)
        assert second.returncode == 3, second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert str(root.resolve()) in second.stderr
        assert "already running" in second.stderr

    assert first.alive
    assert (root / "state" / "inboxd.lock").read_text().strip() == str(first.pid)
    relpath = "outbox/droid/cci_qa_pairs.json"
    drop(root / relpath, encode_qa(qa_pairs("cci", 3)))
    first.wait_done([relpath])
    assert len(first.events("daemon.started")) == 1


def test_sigterm_when_idle_exits_0_at_once_and_logs_stopping_and_stopped(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """SIGTERM to an idle daemon: exit 0 in seconds, daemon.stopping (with the supervisor
    loop's longest iteration), the worker stopped, then daemon.stopped."""
    daemon = make_daemon(root, INBOXD_WATCH__POLL_SECONDS="0.25").start()

    sent = time.monotonic()
    assert daemon.terminate() == 0
    assert time.monotonic() - sent < 3

    names = [line["event"] for line in daemon.lines()]
    assert names[-3:] == ["daemon.stopping", "worker.stopped", "daemon.stopped"]
    assert daemon.events("daemon.stopping")[0]["longest_iteration_ms"] >= 0
    assert daemon.events("daemon.stopped")[0]["unfinished"] == 0
    assert daemon.stderr() == ""


def test_sigterm_during_import_exits_0_and_the_next_start_finishes_the_rest(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """SIGTERM mid-import exits 0 after the current step; the next start finishes the rest."""
    corpus = {
        f"outbox/droid/t{n:02d}_qa_pairs.json": encode_qa(qa_pairs(f"t{n:02d}", 15))
        for n in range(30)
    }
    for relpath, data in corpus.items():
        drop(root / relpath, data)
    daemon = make_daemon(root).start(wait_ready=False)
    daemon.wait_until(
        lambda: any(e.get("state") == "settled" for e in daemon.events("batch.transition")),
        what="the first step of the import",
    )

    sent = time.monotonic()
    assert daemon.terminate() == 0
    assert time.monotonic() - sent < 10  # the current step (at most a model load) ends
    stopped = daemon.events("daemon.stopped")
    assert daemon.events("daemon.stopping") and stopped
    assert stopped[0]["unfinished"] > 0  # it really stopped half-way
    assert daemon.stderr() == ""

    daemon.start()
    assert daemon.events("daemon.started")[0]["unfinished"] == stopped[0]["unfinished"]
    daemon.wait_done(corpus)
    assert query(root, "SELECT count(*) FROM pairs") == [(30 * 15,)]
    assert len(batches(root)) == 30
    assert_consistent(root)


def test_run_once_processes_everything_present_and_status_json_reports_it(
    root: Path, examples_root: Path
) -> None:
    """run --once imports everything present and exits 0; status --json reports the counts."""
    copy_tree(examples_root / "outbox", root / "outbox")

    once = run_cli(root, "run", "--once", timeout=TIMEOUT * 2)
    assert once.returncode == 0, once.stderr
    events = [json.loads(line)["event"] for line in once.stdout.splitlines()]
    assert "daemon.started" in events and events[-1] == "daemon.stopped"
    assert imported(root, EXAMPLE_QA)

    status = run_cli(root, "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["initialised"] is True
    assert report["pairs"] == 5
    assert sum(report["batches"][state] for state in DONE_STATES) == 3
    assert sum(report["batches"].values()) == 3
    assert report["failed"] == [] and report["rejected"] == []
    assert [
        (p["agent"], p["sessions_complete"], p["sessions_total"]) for p in report["progress"]
    ] == [("droid", 1, 43)]
    assert [s["agent"] for s in report["all_sessions_complete"]] == ["droid"]


def test_retry_requeues_a_batch_parked_by_a_real_archive_failure(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """A batch parked by a real archive failure stays parked until `inboxd retry`."""
    # Tests may run as root, where chmod stops nothing: the archive's <ab>/ folder for
    # this file's hash is made a regular file instead, so archiving fails (TransientError).
    relpath = "outbox/droid/roc_qa_pairs.json"
    data = encode_qa(qa_pairs("roc", 4))
    sha = hashlib.sha256(data).hexdigest()
    blocker = root / "state" / "archive" / sha[:2]  # where archive/<ab>/<sha>.json would go
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder\n")
    drop(root / relpath, data)

    once = run_cli(root, "run", "--once", INBOXD_RETRY__MAX_ATTEMPTS="1")
    assert once.returncode == 0, once.stderr
    assert '"batch.parked"' in once.stdout
    (batch,) = batches(root)
    assert batch["state"] == "failed" and batch["resume_state"] == "detected"
    assert batch["next_attempt_at"] is None
    assert "cannot write the archive copy" in batch["last_error"]
    report = json.loads(run_cli(root, "status", "--json").stdout)
    assert [(f["id"], f["parked"]) for f in report["failed"]] == [(batch["id"], True)]

    blocker.unlink()
    daemon = make_daemon(root, log_level="debug").start()
    daemon.wait_rescans(2)  # and many loop ticks: a parked batch is not retried on its own
    assert batches(root)[0]["state"] == "failed"

    retry = run_cli(root, "retry")
    assert retry.returncode == 0, retry.stderr
    assert "re-queued 1" in retry.stdout
    daemon.wait_done([relpath])
    assert query(root, "SELECT count(*) FROM pairs") == [(4,)]
    moves = [
        (here, there)
        for here, there in query(
            root,
            "SELECT from_state, to_state FROM transitions WHERE batch_id = ? ORDER BY id",
            [batch["id"]],
        )
    ]
    assert moves[:4] == [
        (None, "detected"),
        ("detected", "failed"),
        ("failed", "detected"),
        ("detected", "settled"),
    ]
    assert (root / "state" / batches(root)[0]["archive_path"]).read_bytes() == data
    assert batches(root)[0]["state"] in DONE_STATES
    assert_consistent(root)
