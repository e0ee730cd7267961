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

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daemon.core.config import resolve_root
from daemon.ops.doctor.data import check_database_exists, database_and_index
from daemon.ops.doctor.host import (
    check_catalog,
    check_config,
    check_folders,
    check_model,
    check_providers,
    check_state_writable,
)
from daemon.ops.doctor.report import Check, Outcome, guarded, render, skip, to_json

__all__ = ["Check", "Outcome", "check_state_writable", "render", "run_checks", "to_json"]


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
        checks.append(guarded(lambda: check_catalog(config), "catalog"))
    else:
        checks.append(skip("catalog", "the config did not load"))
    checks.append(check_folders(root))
    if config is None:
        names = ("state", "database", "index", "providers", "model")
        return checks + [skip(name, "the config did not load") for name in names]
    checks.append(guarded(lambda: check_state_writable(config), "state"))
    providers = check_providers(config)
    missing = check_database_exists(config)
    if missing is not None:
        checks += [missing, skip("index", "the database check failed")]
    else:
        checks += database_and_index(config, providers)
    checks.append(providers)
    if not model:
        checks.append(skip("model", "--skip-model"))
    elif providers.failed:
        checks.append(skip("model", "the embedding provider is not available"))
    else:
        checks.append(guarded(lambda: check_model(config), "model"))
    return checks
