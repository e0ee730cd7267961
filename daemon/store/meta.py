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
