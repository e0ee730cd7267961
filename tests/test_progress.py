"""Progress of long work: the worker's current task is saved in SQLite (a new task at
once, counts throttled, removed when idle), a run's totals count batches and pairs, and
``inboxd status`` shows what a running daemon is working on."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from builders import make_config, open_store
from conftest import Daemon, batches, drop, encode_qa, qa_pairs, run_cli

from daemon.core.progress import Progress, Update, run_totals
from daemon.states import PIPELINE, BatchState
from daemon.store import Store


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _store(tmp_path: Path) -> Store:
    return open_store(make_config(tmp_path / "root").db_path)


def test_a_task_is_saved_with_its_counts_and_read_back(tmp_path: Path) -> None:
    """set_task_progress stores the task; task_progress returns it with this process's pid."""
    store = _store(tmp_path)
    store.set_task_progress("embedding a.json", 3, 10, unit="batches", detail="x", now=5.0)
    (row,) = store.task_progress()
    assert (row["task"], row["done"], row["total"], row["unit"], row["detail"]) == (
        "embedding a.json",
        3,
        10,
        "batches",
        "x",
    )
    assert row["worker"] == "worker" and row["pid"] > 0
    assert row["started_at"] == row["updated_at"] == 5.0


def test_the_same_task_keeps_its_start_time_and_a_new_one_restarts_it(tmp_path: Path) -> None:
    """started_at stays while the task is the same, and is reset when the task changes."""
    store = _store(tmp_path)
    store.set_task_progress("export", 0, 100, now=1.0)
    store.set_task_progress("export", 50, 100, now=2.0)
    (row,) = store.task_progress()
    assert (row["done"], row["started_at"], row["updated_at"]) == (50, 1.0, 2.0)
    store.set_task_progress("eval", 0, None, now=3.0)
    (row,) = store.task_progress()
    assert (row["task"], row["total"], row["started_at"]) == ("eval", None, 3.0)
    store.clear_task_progress()
    assert store.task_progress() == []


def test_progress_saves_a_new_task_at_once_and_throttles_counts(tmp_path: Path) -> None:
    """Progress writes each new task immediately, the same task's counts at most every
    ``every`` seconds, and clears the row when the work goes idle; listeners hear all."""
    store = _store(tmp_path)
    clock = FakeClock()
    heard: list[Update] = []
    progress = Progress(store, [heard.append], every=0.5, clock=clock)

    progress.update("embedding a.json", 0, 4, "batches")
    assert store.task_progress()[0]["done"] == 0
    progress.update("embedding a.json", 1, 4, "batches")
    assert store.task_progress()[0]["done"] == 0  # within 0.5 s: not saved yet
    clock.now += 0.6
    progress.update("embedding a.json", 2, 4, "batches")
    assert store.task_progress()[0]["done"] == 2
    progress.update("scoring a.json", 3, 4, "batches")  # a new task: saved at once
    assert store.task_progress()[0]["task"] == "scoring a.json"
    assert [u.done for u in heard] == [0, 1, 2, 3]

    progress.idle()
    assert store.task_progress() == []


def test_a_locked_database_delays_progress_but_never_fails_the_work(tmp_path: Path) -> None:
    """While another writer holds the DB, update() and idle() return quietly; the task
    is saved by the first update after the lock is gone."""
    config = make_config(tmp_path / "root")
    open_store(config.db_path).close()
    store = Store(config.db_path, timeout=0.05)
    holder = sqlite3.connect(config.db_path)
    holder.execute("BEGIN IMMEDIATE")
    progress = Progress(store, every=0.0)
    progress.update("embedding a.json", 1, 4, "texts")
    progress.idle()
    holder.rollback()
    holder.close()
    progress.update("embedding a.json", 2, 4, "texts")
    assert [(r["task"], r["done"]) for r in store.task_progress()] == [("embedding a.json", 2)]
    progress.idle()
    assert store.task_progress() == []


def test_steps_report_their_names_and_positions() -> None:
    """steps() turns a list of step names into updates ``task: name``, i of n steps."""
    heard: list[Update] = []
    step = Progress(listeners=[heard.append]).steps("corpus run", ["rescoring", "export"])
    step(0)
    step(1)
    assert heard == [
        Update("corpus run: rescoring", 0, 2, "steps"),
        Update("corpus run: export", 1, 2, "steps"),
    ]


def test_run_totals_count_resting_batches_and_embedded_pairs() -> None:
    """A batch is done when no stage moves it; pairs count once embedded, and rejected or
    superseded batches add no pairs to the total."""
    counts = {
        "indexed": (3, 300),
        "imported": (1, 80),
        "validated": (1, 70),
        "failed": (1, 10),
        "rejected": (2, 0),
        "superseded": (1, 90),
    }
    totals = run_totals(counts, [s for s in PIPELINE if s is not BatchState.INDEXED])
    assert (totals.batches_done, totals.batches) == (6, 9)
    assert (totals.pairs_embedded, totals.pairs) == (300, 460)
    assert totals.detail == "300/460 pairs embedded"


def test_batch_totals_cover_unfinished_batches_and_those_finished_since(tmp_path: Path) -> None:
    """batch_totals counts every batch not at rest, and resting ones only if they came to
    rest at or after ``since``."""
    store = _store(tmp_path)
    old, _ = store.create_batch(agent="a", path="old.json", sha256="1", size=1, now=10.0)
    store.advance(old, BatchState.REJECTED, now=10.0)
    store.create_batch(agent="a", path="new.json", sha256="2", size=1, now=20.0)
    rested, _ = store.create_batch(agent="a", path="late.json", sha256="3", size=1, now=20.0)
    store.advance(rested, BatchState.REJECTED, now=30.0)
    resting = [BatchState.REJECTED, BatchState.INDEXED, BatchState.SUPERSEDED]
    assert store.batch_totals(25.0, resting) == {"detected": (1, 0), "rejected": (1, 0)}
    assert store.batch_totals(5.0, resting) == {"detected": (1, 0), "rejected": (2, 0)}


def test_daemon_status_shows_the_workers_current_task(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """While a running daemon works through files, ``status --json`` names its current
    task (the step and the file) and how far it is, in batches of the stretch of work
    or in texts of the file being embedded; the row goes once the daemon is idle."""
    daemon = make_daemon(root).start()
    for i in range(3):
        path = root / "outbox" / "agent1" / f"big{i}_qa_pairs.json"
        drop(path, encode_qa(qa_pairs(f"b{i}", 60)))

    def working() -> list[dict[str, object]] | None:
        report = json.loads(run_cli(root, "status", "--json").stdout)
        assert report["daemon"] == {"running": True, "pid": daemon.pid}
        return report["worker"] or None

    (task,) = daemon.wait_until(working, what="the worker's task in status --json")
    assert task["pid"] == daemon.pid and task["unit"] in {"batches", "texts"}
    assert str(task["task"]).split(" ")[0] in {
        "archiving",
        "validating",
        "importing",
        "embedding",
        "de-duplicating",
        "scoring",
        "indexing",
    }
    assert "outbox/agent1/big" in str(task["task"])
    limit = 3 if task["unit"] == "batches" else 120  # batches, or one file's texts
    assert 0 <= int(str(task["done"])) <= int(str(task["total"])) <= limit
    if task["unit"] == "batches":
        assert "pairs embedded" in str(task["detail"])
    daemon.wait_until(
        lambda: [b["state"] for b in batches(root)] == ["indexed"] * 3,
        timeout=300,
        what="all three files indexed",
    )
    daemon.wait_until(
        lambda: json.loads(run_cli(root, "status", "--json").stdout)["worker"] == [],
        what="the worker's row to go when idle",
    )
    assert daemon.terminate() == 0
    report = json.loads(run_cli(root, "status", "--json").stdout)
    assert report["daemon"] == {"running": False, "pid": None} and report["worker"] == []
