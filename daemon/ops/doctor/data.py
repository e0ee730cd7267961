"""Doctor's checks of the data: the DB (present, intact, a schema we know) and the
index (in step with the DB), plus who holds the root's lock."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from sqlite_utils import Database

from daemon.core.config import Config
from daemon.core.errors import InboxdError
from daemon.ops.doctor.report import Check, fail, guarded, ok, skip
from daemon.refine.index import INDEX_FILE, META_FILE, VectorIndex, ids_checksum
from daemon.states import BatchState
from daemon.store import Store
from daemon.store.schema import migrations

#: Batches whose pairs are checked for duplicates but not yet in the index.
_CATCHING_UP = (BatchState.DEDUPLICATED, BatchState.SCORED)


def daemon_pid(lock_path: Path) -> int | None:
    """The pid of the daemon holding the root's lock, or None when none does.

    Read from ``/proc/locks`` rather than by trying the lock: taking it even for a
    moment could make a daemon starting at that instant exit as "already running".
    """
    try:
        info = lock_path.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    where = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == where:
            return int(fields[4])
    return None


def _restore_fix(path: Path) -> str:
    return (
        "stop the daemon, move the damaged file aside, put the latest `inboxd backup` copy"
        f" at {path} (remove any inboxd.db-wal/-shm next to it) and start the daemon; the"
        " index is rebuilt from the DB (systemd/README.md, 'Back up and restore')"
    )


def check_database_exists(config: Config) -> Check | None:
    """A FAIL when there is no DB file to open, else None."""
    if config.db_path.is_file():
        return None
    return fail(
        "database",
        f"{config.db_path} does not exist",
        f"a new root: `inboxd --root {config.root} init`; an existing one lost its"
        " DB: restore the latest backup (systemd/README.md, 'Back up and restore')",
    )


def check_database(config: Config, store: Store) -> Check:
    """The DB (open read-only in ``store``) is intact and its schema is one we know."""
    path = config.db_path
    try:
        report = store.db.execute("PRAGMA integrity_check(20)").fetchall()
        rows = [line for r in report for line in str(r[0]).splitlines()]
        applied = {m.name for m in migrations.applied(store.db)}
        pending = [m.name for m in migrations.pending(store.db)]
        pairs = store.db.execute("SELECT count(*) FROM pairs").fetchone()[0] if not pending else 0
    except sqlite3.Error as exc:
        return fail("database", f"{path} is damaged or not a database: {exc}", _restore_fix(path))
    if rows != ["ok"]:
        detail = f"{path} is damaged (integrity_check): " + "; ".join(rows[:5])
        return fail("database", detail, _restore_fix(path))
    unknown = sorted(applied - {m.name for m in migrations.pending(Database(memory=True))})
    if unknown:
        return fail(
            "database",
            f"{path} has schema migrations this inboxd does not know ({', '.join(unknown)})",
            "it was written by a newer inboxd: install that version again (or restore a"
            " backup made by this one)",
        )
    size = path.stat().st_size / 2**20
    schema = f"{len(pending)} migration(s) pending" if pending else "schema up to date"
    pid = daemon_pid(config.lock_path)
    running = f"daemon running (pid {pid})" if pid else "daemon not running"
    return ok(
        "database", f"{path}: integrity ok, {pairs} pairs, {size:.1f} MiB, {schema}; {running}"
    )


def check_index(config: Config, store: Store) -> Check:
    """The saved index holds exactly the pairs ``indexable_ids`` names."""
    from daemon.providers.embedders import make_embedder
    from daemon.refine.corpus import indexable_ids

    embedder = make_embedder(config)
    wanted = indexable_ids(store)
    folder = config.index_dir
    rebuild = (
        "the index is a cache the daemon rebuilds from the DB at start-up, nothing is lost:"
        " `systemctl restart inboxd` (or, with the daemon stopped, `inboxd refine`)"
    )
    try:
        meta = json.loads((folder / META_FILE).read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        if not wanted:
            return ok("index", "empty: no pair indexed yet")
        return fail(
            "index", f"{folder / META_FILE} is missing; {len(wanted)} pairs to index", rebuild
        )
    except (OSError, ValueError) as exc:
        return fail("index", f"{folder / META_FILE} cannot be read: {exc}", rebuild)
    problems = []
    if meta.get("model") != embedder.model_id or meta.get("dimension") != embedder.dimension:
        problems.append(
            f"built with {meta.get('model')} ({meta.get('dimension')} dimensions), the config"
            f" uses {embedder.model_id} ({embedder.dimension})"
        )
    if meta.get("count") != len(wanted):
        problems.append(f"holds {meta.get('count')} pairs, the DB has {len(wanted)} to index")
    elif meta.get("ids_sha256") != ids_checksum(wanted):
        problems.append(f"holds {len(wanted)} pairs, but not the ones the DB names")
    if (
        not problems
        and VectorIndex.load(folder, wanted, embedder.model_id, embedder.dimension) is None
    ):
        problems.append(f"{folder / INDEX_FILE} does not match its metadata or cannot be loaded")
    if not problems:
        return ok("index", f"{len(wanted)} pairs, in step with the DB")
    in_flight = store.db.execute(
        f"SELECT count(*) FROM batches WHERE state IN ({', '.join('?' for _ in _CATCHING_UP)})",
        list(_CATCHING_UP),
    ).fetchone()[0]
    if in_flight and daemon_pid(config.lock_path):
        # Between a batch's dedup and its index step the index lags by design.
        return ok("index", f"catching up: {'; '.join(problems)} ({in_flight} batch(es) in flight)")
    return fail("index", "stale: " + "; ".join(problems), rebuild)


def database_and_index(config: Config, providers: Check) -> list[Check]:
    from daemon.ops.backup import readonly_store

    try:
        with readonly_store(config.db_path) as store:
            database = check_database(config, store)
            if database.failed:
                return [database, skip("index", "the database check failed")]
            if migrations.pending(store.db):
                why = "schema migrations pending (the next start applies them)"
                return [database, skip("index", why)]
            if providers.failed:
                return [database, skip("index", "the embedding provider is not available")]
            return [database, guarded(lambda: check_index(config, store), "index")]
    except (sqlite3.Error, InboxdError) as exc:  # it would not even open
        path = config.db_path
        return [
            fail("database", f"{path} cannot be opened: {exc}", _restore_fix(path)),
            skip("index", "the database check failed"),
        ]
