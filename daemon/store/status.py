"""Queries for what a root holds, as ``inboxd status``, the reports and the daemon's
systemd status line show it: batches by state, rejected and failed files, the agents'
progress, signals and counts. Functions take the sqlite-utils Database of a Store."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from daemon.states import BatchState


def pair_count(db: Database) -> int:
    """Pairs imported, duplicates and pairs of superseded versions included."""
    return int(db.execute("SELECT count(*) FROM pairs").fetchone()[0])


def batch_count(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM batches").fetchone()[0])


def batches_by_state(db: Database) -> dict[str, int]:
    rows = db.execute("SELECT state, count(*) FROM batches GROUP BY state").fetchall()
    return {str(state): int(n) for state, n in rows}


def batches_in(db: Database, states: tuple[BatchState, ...]) -> int:
    """How many batches are in one of ``states``."""
    marks = ", ".join("?" for _ in states)
    row = db.execute(f"SELECT count(*) FROM batches WHERE state IN ({marks})", list(states))
    return int(row.fetchone()[0])


def rejected_batches(db: Database, limit: int = 20) -> list[dict[str, Any]]:
    """The latest rejected files and why, newest first."""
    return [
        dict(row)
        for row in db.query(
            "SELECT id, path, reject_reason FROM batches WHERE state = ? ORDER BY id DESC LIMIT ?",
            [BatchState.REJECTED, limit],
        )
    ]


def failed_batches(db: Database) -> list[dict[str, Any]]:
    """Failed batches: where they failed, how often, why, and whether they are parked."""
    return [
        {**row, "parked": bool(row["parked"])}
        for row in db.query(
            "SELECT id, path, resume_state, attempts, last_error,"
            " next_attempt_at IS NULL AS parked FROM batches WHERE state = ? ORDER BY id",
            [BatchState.FAILED],
        )
    ]


def invalid_item_count(db: Database) -> int:
    """Items of accepted files that were not imported (each with its position)."""
    return int(db.execute("SELECT count(*) FROM batch_errors").fetchone()[0])


def progress(db: Database) -> list[dict[str, Any]]:
    """Each agent's latest ``status.txt`` as read, by agent."""
    return [dict(row) for row in db.query("SELECT * FROM progress ORDER BY agent")]


def signals(db: Database) -> list[dict[str, Any]]:
    """Signal files received, oldest first, and when each was handled."""
    return [
        dict(row)
        for row in db.query(
            "SELECT kind, agent, path, received_at, handled_at FROM signals ORDER BY id"
        )
    ]
