"""Doctor's checks of the host and the configuration: config, catalog, folders, state/
writable with disk space, providers, and the local model loading offline."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daemon.core.catalog import load_catalog
from daemon.core.config import CONFIG_FILE_NAME, Config, load_config
from daemon.core.errors import ConfigError
from daemon.ops.doctor.report import Check, fail, ok, skip
from daemon.providers.embedders import make_embedder
from daemon.providers.scorers import make_scorer

#: Below this much free space SQLite starts failing with "database or disk is full".
MIN_FREE_BYTES = 64 * 1024 * 1024


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


def check_providers(config: Config) -> Check:
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


def check_model(config: Config) -> Check:
    """The embedding model loads without the network and gives a sane vector."""
    if config.embeddings.provider != "local":
        return skip("model", f"embeddings.provider is {config.embeddings.provider!r}")
    # Prove the daemon's promise (systemd sets the same): nothing comes from the hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    embedder = make_embedder(config)
    try:
        vector = embedder.embed_documents(["What does the simple moving average measure?"])
    except ConfigError as exc:
        return fail(
            "model",
            str(exc),
            "run `inboxd init`: it exports the packaged model to ONNX once (that step needs"
            " torch==2.13.0 and `inboxd[export]`; scripts/dev setup installs both)",
        )
    except Exception as exc:  # noqa: BLE001 - any library failure is what this check reports
        return fail(
            "model",
            f"{config.embeddings.local_model} failed to load offline: {exc!r}",
            "reinstall the model package and onnxruntime in the daemon's venv, then"
            " `inboxd init` (systemd/README.md, 'Install'); the daemon never downloads models",
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
