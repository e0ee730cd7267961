"""``inboxd backup``: a consistent copy of the DB, taken while the daemon runs.

SQLite's online backup API (``sqlite3.Connection.backup``) copies the database as of
one read transaction. In WAL mode a reader does not block the daemon's writes, so
the copy is taken in a single step (``pages=-1``): a step-by-step copy would restart
every time the daemon commits and might never finish on a busy root.

The copy is written to a temp file beside the destination, checked (``PRAGMA
integrity_check``), switched to a self-contained rollback journal (no -wal/-shm
files to carry along), fsynced and only then renamed into place, so a DEST path
never holds half a backup. It gets the DB's own permission bits: it is the corpus.

Only the DB is copied. ``state/index/`` is a cache rebuilt from the DB; ``state/archive/``
and ``state/reports/`` are plain files for ``rsync -a`` (what :data:`AFTERWARDS` says).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from daemon.core import atomic
from daemon.core.config import Config
from daemon.core.errors import InboxdError, PermanentError
from daemon.store import Store, translate


@contextmanager
def readonly_store(path: Path) -> Iterator[Store]:
    """A read-only Store on ``path`` that leaves no -wal/-shm the daemon cannot open
    (see daemon.store.readers), closed afterwards."""
    store = Store(path, readonly=True)
    try:
        yield store
    finally:
        store.close()


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int
    pairs: int
    batches: int
    seconds: float


def backup_name(now: float) -> str:
    """The file name used when DEST is a folder: ``inboxd-20250101T120000Z.db`` (UTC)."""
    return f"inboxd-{datetime.fromtimestamp(now, UTC):%Y%m%dT%H%M%SZ}.db"


def resolve_destination(dest: Path, now: float) -> Path:
    """DEST itself, or a timestamped file inside it when DEST is (or ends like) a folder."""
    if dest.is_dir() or str(dest).endswith(os.sep):
        return dest / backup_name(now)
    return dest


def backup_database(
    config: Config, dest: Path, *, now: float | None = None, overwrite: bool = False
) -> BackupResult:
    """Copy ``state/inboxd.db`` to ``dest`` (a file, or a folder for a timestamped file).

    Raises InboxdError with what to do: no DB, DEST's folder missing, DEST exists
    (unless ``overwrite``), DEST is the live DB, or SQLite failed.
    """
    started = time.monotonic()
    source = config.db_path
    if not source.is_file():
        raise InboxdError(f"no database at {source}; nothing to back up")
    target = resolve_destination(dest.expanduser(), time.time() if now is None else now)
    target = target.absolute()
    if not target.parent.is_dir():
        raise InboxdError(f"{target.parent} is not a folder; create it first")
    live = {source.resolve(), *(Path(f"{source.resolve()}{s}") for s in ("-wal", "-shm"))}
    if target.resolve() in live:
        raise InboxdError(f"{target} is the live database; back up to another path")
    if target.exists() and not overwrite:
        raise InboxdError(f"{target} already exists; choose another name or pass --force")
    mode = stat.S_IMODE(source.stat().st_mode)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    temp = Path(name)
    try:
        pairs, batches = _copy(source, temp)
        with temp.open("rb") as handle:
            os.fsync(handle.fileno())
        temp.chmod(mode)
        temp.replace(target)
        atomic.fsync_dir(target.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return BackupResult(target, target.stat().st_size, pairs, batches, time.monotonic() - started)


def _copy(source: Path, temp: Path) -> tuple[int, int]:
    """Back up ``source`` into the empty file ``temp``, check it; (pairs, batches)."""
    try:
        with readonly_store(source) as store:
            _backup_into(store, temp)
        copy = sqlite3.connect(temp)
        try:
            # The copy inherits WAL mode from the header; a backup is one file.
            copy.execute("PRAGMA journal_mode=DELETE")
            problems = [str(r[0]) for r in copy.execute("PRAGMA integrity_check(5)")]
            if problems != ["ok"]:
                raise PermanentError(
                    f"the copy fails integrity_check ({'; '.join(problems)}); "
                    "run `inboxd doctor`: the live database may be damaged"
                )
            pairs = copy.execute("SELECT count(*) FROM pairs").fetchone()[0]
            batches = copy.execute("SELECT count(*) FROM batches").fetchone()[0]
        finally:
            copy.close()
    except sqlite3.Error as exc:
        raise translate(exc, f"backing up {source}") from exc
    return int(pairs), int(batches)


def _backup_into(store: Store, temp: Path) -> None:
    copy = sqlite3.connect(temp)
    try:
        store.db.conn.backup(copy)  # one step (pages=-1): see the module docstring
    finally:
        copy.close()


def afterwards(config: Config, result: BackupResult) -> str:
    """What the operator should know once the DB is copied."""
    state = config.state_dir
    return (
        f"backed up {config.db_path} to {result.path}\n"
        f"  {result.pairs} pairs, {result.batches} batches, {result.bytes / 2**20:.1f} MiB,"
        f" integrity ok, {result.seconds:.1f} s\n"
        f"Not in this file:\n"
        f"  {state / 'index'}/   not needed: the index is rebuilt from the DB at start-up\n"
        f"  {state / 'archive'}/ copy it too (rsync -a): every accepted input file,"
        " by content hash\n"
        f"  {state / 'reports'}/ copy it too if you keep reports (rsync -a)\n"
        f"Restore: stop the daemon, put the copy at {config.db_path}, delete inboxd.db-wal"
        " and inboxd.db-shm beside it, start the daemon (systemd/README.md)."
    )
