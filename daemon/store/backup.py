"""The online backup of a live DB, and the check of the copy.

SQLite's online backup API copies the database as of one read transaction. In WAL mode
a reader does not block the daemon's writes, so the copy is taken in a single step
(``pages=-1``): a step-by-step copy would restart every time the daemon commits and
might never finish on a busy root.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from daemon.core.errors import PermanentError
from daemon.store import Store, translate
from daemon.store.status import batch_count, pair_count


def copy_into(store: Store, target: Path) -> None:
    """Back ``store``'s database up into the (empty) file ``target`` in one step."""
    copy = sqlite3.connect(target)
    try:
        store.db.conn.backup(copy)  # one step (pages=-1): see the module docstring
    except sqlite3.Error as exc:
        raise translate(exc, f"backing up {store.path}") from exc
    finally:
        copy.close()


def seal_copy(target: Path, source: Path) -> tuple[int, int]:
    """Make the copy at ``target`` one self-contained file and check it whole; its
    (pairs, batches). PermanentError when it fails ``integrity_check``."""
    try:
        copy = sqlite3.connect(target)
        try:
            # The copy inherits WAL mode from the header; a backup is one file.
            copy.execute("PRAGMA journal_mode=DELETE")
            problems = [str(r[0]) for r in copy.execute("PRAGMA integrity_check(5)")]
            if problems != ["ok"]:
                raise PermanentError(
                    f"the copy fails integrity_check ({'; '.join(problems)}); "
                    "run `inboxd doctor`: the live database may be damaged"
                )
            db = Database(copy, execute_plugins=False)
            return pair_count(db), batch_count(db)
        finally:
            copy.close()
    except sqlite3.Error as exc:
        raise translate(exc, f"backing up {source}") from exc
