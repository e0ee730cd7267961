"""Queries for intake: the files it refused, shown by ``inboxd status``. Functions take
the sqlite-utils Database of a Store; writes run inside its transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database


def save_refusal(
    db: Database, *, path: str, agent: str, reason: str, position: str | None, now: float
) -> bool:
    """Record (or update) why ``path`` was refused; True when the reason is new."""
    known = db.execute(
        "SELECT reason, position FROM refused_files WHERE path = ?", [path]
    ).fetchone()
    if known is not None and tuple(known) == (reason, position):
        db.execute("UPDATE refused_files SET last_seen = ? WHERE path = ?", [now, path])
        return False
    db.execute(
        "INSERT INTO refused_files (path, agent, reason, position, first_seen, last_seen)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET agent = excluded.agent,"
        " reason = excluded.reason, position = excluded.position, last_seen = excluded.last_seen",
        [path, agent, reason, position, now, now],
    )
    return True


def drop_refusals(db: Database, paths: Iterable[str]) -> None:
    """Forget the refusals of these paths (taken after all, or gone)."""
    db.conn.executemany("DELETE FROM refused_files WHERE path = ?", [(p,) for p in paths])


def refusals(db: Database) -> list[dict[str, Any]]:
    """Every refused file, most recent first."""
    if not db.table("refused_files").exists():  # a DB the daemon has not migrated yet
        return []
    return [
        dict(row)
        for row in db.query(
            "SELECT path, agent, reason, position, first_seen, last_seen FROM refused_files"
            " ORDER BY last_seen DESC, path"
        )
    ]
