"""The connection to one root's SQLite database: opened in WAL mode (the daemon is the
one writer), migrated, with write transactions that threads take in turn; and the
mapping of sqlite3's errors to ours. The named queries build on it (``daemon.store``)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from daemon.core.errors import PermanentError, TransientError
from daemon.store import readers
from daemon.store.schema import migrations

#: The handle a transaction's effects and the named queries get. Stages name this
#: type, never sqlite_utils: the store is the only package that knows what it is.
Connection = Database

#: What SQLite raises about a file it cannot read (damaged, not a database). Named here
#: so that doctor, which reports such damage, never imports sqlite3 itself.
DatabaseError = sqlite3.Error

_RETRYABLE_SQLITE = ("database is locked", "disk i/o error", "database or disk is full")


class StoreBase:
    """The database of one root, without its named queries (see ``daemon.store.Store``).

    Threads may share one: a write transaction holds a lock, so a second thread's waits
    for it, never nests in it.
    """

    def __init__(self, path: Path, *, readonly: bool = False, timeout: float = 30.0) -> None:
        self.path = path
        self.readonly = readonly
        self._writing = threading.RLock()
        # The -wal/-shm a reader might create (see daemon.store.readers).
        self._absent = readers.absent_companions(path) if readonly else []
        try:
            if readonly:
                conn = sqlite3.connect(
                    readers.read_only_uri(path), uri=True, timeout=timeout, check_same_thread=False
                )
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
            self.db = Database(conn, execute_plugins=False)
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise translate(exc, f"cannot open the database {path}") from exc

    def migrate(self) -> None:
        """Apply pending schema migrations."""
        migrations.apply(self.db)

    def close(self) -> None:
        self.db.close()
        readers.hand_over(self.path, self._absent)

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One write transaction; taken IMMEDIATE so it never fails half-way on a lock,
        and under this Store's lock so threads sharing it take turns."""
        with self._writing:
            conn = self.db.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate(exc, "cannot start a transaction") from exc
            try:
                yield self.db
            except sqlite3.Error as exc:
                self._rollback()
                raise translate(exc, "a database write failed") from exc
            except BaseException:
                self._rollback()
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise translate(exc, "cannot commit") from exc

    def _rollback(self) -> None:
        # SQLite may already have rolled back (after SQLITE_FULL, say): a ROLLBACK then
        # raises "no transaction is active" and would hide the error that matters.
        if self.db.conn.in_transaction:
            self.db.conn.execute("ROLLBACK")


def translate(exc: sqlite3.Error, what: str) -> Exception:
    """Map an sqlite3 error to ours: lock and disk trouble are transient."""
    message = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError) and any(
        marker in message for marker in _RETRYABLE_SQLITE
    ):
        return TransientError(f"{what}: {exc}")
    return PermanentError(f"{what}: {exc}")
