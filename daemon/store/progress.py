"""Named queries for progress: the worker's current task (``task_progress``) and the
batch counts that measure a run."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from sqlite_utils import Database

from daemon.states import BatchState
from daemon.store.base import StoreBase

#: The worker name of the daemon's one processing loop.
WORKER = "worker"


def set_task(
    db: Database,
    task: str,
    done: int,
    total: int | None,
    *,
    unit: str,
    detail: str,
    worker: str,
    now: float,
) -> None:
    """Record what ``worker`` is doing; ``started_at`` is kept while the task is the same."""
    db.execute(
        "INSERT INTO task_progress"
        " (worker, pid, task, done, total, unit, detail, started_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (worker) DO UPDATE SET pid = excluded.pid, done = excluded.done,"
        " total = excluded.total, unit = excluded.unit, detail = excluded.detail,"
        " started_at = CASE WHEN task = excluded.task THEN started_at"
        "                   ELSE excluded.started_at END,"
        " task = excluded.task, updated_at = excluded.updated_at",
        [worker, os.getpid(), task, done, total, unit, detail, now, now],
    )


def clear_task(db: Database, worker: str) -> None:
    db.execute("DELETE FROM task_progress WHERE worker = ?", [worker])


def tasks(db: Database) -> list[dict[str, Any]]:
    """Every worker's current task; none on a DB from before this table existed."""
    try:
        return [dict(row) for row in db.query("SELECT * FROM task_progress ORDER BY worker")]
    except sqlite3.OperationalError:  # an older daemon holds the DB, not yet migrated
        return []


def batch_totals(db: Database, since: float, resting: list[str]) -> dict[str, tuple[int, int]]:
    """Batches of a run by state -> (batches, valid pairs): every batch not resting,
    and every batch that came to rest at or after ``since``."""
    marks = ", ".join("?" for _ in resting)
    return {
        str(row[0]): (int(row[1]), int(row[2]))
        for row in db.execute(
            "SELECT state, count(*), coalesce(sum(pairs_valid), 0) FROM batches"
            f" WHERE updated_at >= ? OR state NOT IN ({marks}) GROUP BY state",
            [since, *resting],
        ).fetchall()
    }


class TaskProgressQueries(StoreBase):
    """The worker's current task, as ``inboxd status`` shows it, and a run's totals."""

    def set_task_progress(
        self,
        task: str,
        done: int,
        total: int | None,
        *,
        unit: str = "",
        detail: str = "",
        worker: str = WORKER,
        now: float | None = None,
    ) -> None:
        """Record what ``worker`` is doing now and how far it has got."""
        with self.transaction() as db:
            set_task(
                db,
                task,
                done,
                total,
                unit=unit,
                detail=detail,
                worker=worker,
                now=time.time() if now is None else now,
            )

    def clear_task_progress(self, worker: str = WORKER) -> None:
        """``worker`` is idle: it has no current task."""
        with self.transaction() as db:
            clear_task(db, worker)

    def task_progress(self) -> list[dict[str, Any]]:
        """Every worker's current task (worker, pid, task, done, total, unit, detail,
        started_at, updated_at); empty when all are idle."""
        return tasks(self.db)

    def batch_totals(
        self, since: float, resting: Sequence[BatchState]
    ) -> dict[str, tuple[int, int]]:
        """State -> (batches, valid pairs) over the batches of a run: those not in a
        ``resting`` state, and those that came to rest at or after ``since``."""
        return batch_totals(self.db, since, [str(state) for state in resting])
