"""Named queries for progress: the worker's current task (``task_progress``) and the
batch counts that measure a run."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from sqlite_utils import Database

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
