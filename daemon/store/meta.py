"""Facts about one root's database (the ``meta`` table)."""

from __future__ import annotations

from sqlite_utils import Database

from daemon.core.errors import PermanentError


def root_id(db: Database) -> str:
    """This root's random id, made once by the migration: it tells this root's remote
    jobs from those of another root using the same API key."""
    row = db.execute("SELECT value FROM meta WHERE key = 'root_id'").fetchone()
    if row is None:
        raise PermanentError(
            "the database has no root_id in its meta table (deleted by hand?); restore it"
            " from a backup, or insert any 12 hex digits not used by another root"
        )
    return str(row[0])


#: Set by the intake when the index must be brought in step and no later stage of the
#: batch will do it (a rejected new version); cleared by the worker, which owns the index.
INDEX_STALE = "index_stale"


def set_value(db: Database, key: str, value: str) -> None:
    """Record ``key`` (inside the caller's transaction)."""
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])


def value(db: Database, key: str) -> str | None:
    """The value of ``key``, None when unset."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return None if row is None else str(row[0])


def delete(db: Database, key: str, if_value: str | None = None) -> None:
    """Forget ``key`` (only while it still holds ``if_value``, when given)."""
    if if_value is None:
        db.execute("DELETE FROM meta WHERE key = ?", [key])
    else:
        db.execute("DELETE FROM meta WHERE key = ? AND value = ?", [key, if_value])
