"""Queries on ``files_taken``: what each protocol file was when it was last taken."""

from __future__ import annotations

from typing import NamedTuple

from sqlite_utils import Database


class TakenFile(NamedTuple):
    size: int
    mtime_ns: int
    sha256: str


def taken_files(db: Database) -> dict[str, TakenFile]:
    """Every file taken so far, by path relative to the root."""
    rows = db.execute("SELECT path, size, mtime_ns, sha256 FROM files_taken")
    return {path: TakenFile(size, mtime_ns, sha256) for path, size, mtime_ns, sha256 in rows}


def remember_taken(db: Database, path: str, taken: TakenFile, now: float) -> None:
    """Record what ``path`` was when it was taken (inside the caller's transaction)."""
    db.execute(
        "INSERT INTO files_taken (path, size, mtime_ns, sha256, taken_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET size = excluded.size,"
        " mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256,"
        " taken_at = excluded.taken_at",
        [path, taken.size, taken.mtime_ns, taken.sha256, now],
    )
