"""What ``inboxd doctor`` asks the DB: whether SQLite can read it whole, which schema
migrations it has, and how many batches are between two steps. Functions take the
sqlite-utils Database of a Store; a file SQLite cannot read raises its
:data:`~daemon.store.DatabaseError`, which doctor reports as damage."""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from daemon.store.schema import migrations
from daemon.store.status import pair_count


@dataclass(frozen=True)
class Health:
    """The DB as ``PRAGMA integrity_check`` and the migrations table see it."""

    #: The integrity check's report, one line each: ``["ok"]`` when intact.
    integrity: list[str]
    applied: set[str]
    pending: list[str]
    #: Pairs imported (0 while migrations are pending: the table may not be there yet).
    pairs: int


def health(db: Database, lines: int = 20) -> Health:
    """Check the whole file (at most ``lines`` problems) and read its schema state."""
    report = db.execute(f"PRAGMA integrity_check({int(lines)})").fetchall()
    pending = pending_migrations(db)
    return Health(
        integrity=[line for r in report for line in str(r[0]).splitlines()],
        applied={m.name for m in migrations.applied(db)},
        pending=pending,
        pairs=pair_count(db) if not pending else 0,
    )


def pending_migrations(db: Database) -> list[str]:
    """Migrations this inboxd has that the DB has not had yet (the next start applies them)."""
    return [m.name for m in migrations.pending(db)]


def known_migrations() -> set[str]:
    """Every migration this inboxd knows."""
    return {m.name for m in migrations.pending(Database(memory=True))}
