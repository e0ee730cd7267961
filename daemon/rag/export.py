"""The refined knowledge base, exported for a RAG system.

An export is a folder: ``knowledge_base.jsonl`` (one active pair a line, with its
indicator, session, category, quality, tier and provenance), the hnswlib index with its
metadata (``pairs.hnsw``, ``pairs.meta.json``) and label map (``labels.json``), a
``README.md`` saying how to load it, and ``manifest.json`` (counts, quality statistics,
sha256 of every other file), written last.

Readers must never see half an export, and a crash must leave the previous one. So every
export is written into a new hidden folder beside the previous ones
(``state/export.d/.tmp-<pid>-<token>``), fsynced, renamed to its final name
(``state/export.d/<UTC time>-<token>``), and only then published by replacing the
symlink ``state/export`` with one rename, which is atomic. The previous version is kept
(a reader that resolved the link a moment ago can finish); older ones are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon import __version__
from daemon.core import atomic
from daemon.core.catalog import Catalog
from daemon.core.config import Config
from daemon.core.errors import InboxdError
from daemon.core.progress import Progress
from daemon.rag.knowledge_base import knowledge_base_rows, quality_stats, render_readme
from daemon.refine.index import INDEX_FILE, META_FILE, VectorIndex
from daemon.services import Services
from daemon.store import Store
from daemon.store import corpus as q

FORMAT_VERSION = 1
KB_FILE = "knowledge_base.jsonl"
LABELS_FILE = "labels.json"
README_FILE = "README.md"
MANIFEST_FILE = "manifest.json"
KEEP_VERSIONS = 2  # the current export and the one before it
EXPORTED = "export.written"
EXPORT_FAILED = "export.failed"


class ExportError(InboxdError):
    """An export cannot be written or read back intact."""


@dataclass(frozen=True)
class ExportResult:
    path: Path  # the published link, e.g. state/export
    version: Path  # the folder it now points at
    pairs: int
    duration_ms: int


def export_path(config: Config) -> Path:
    """Where the export is published (``rag.export_dir``, default ``state/export``)."""
    configured = config.rag.export_dir
    if configured is None:
        return config.state_dir / "export"
    return configured if configured.is_absolute() else config.root / configured


def versions_dir(link: Path) -> Path:
    return link.with_name(link.name + ".d")


# -- writing ----------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _write_durable(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _remove_abandoned(versions: Path) -> None:
    """Temp folders of exports that died (their process is gone); a live one is left."""
    for folder in versions.glob(".tmp-*"):
        pid = folder.name.split("-")[1]
        if not pid.isdigit() or not _pid_alive(int(pid)) or int(pid) == os.getpid():
            shutil.rmtree(folder, ignore_errors=True)


def _publish(link: Path, version: Path) -> None:
    """Point ``link`` at ``version`` with one atomic rename."""
    if link.exists() and not link.is_symlink():
        # A real folder where the link goes (made by hand, or an old layout): move it
        # among the versions once; from then on the link is swapped atomically.
        link.replace(versions_dir(link) / f"legacy-{secrets.token_hex(3)}")
    temp_link = link.with_name(f".{link.name}.link-{os.getpid()}")
    temp_link.unlink(missing_ok=True)
    temp_link.symlink_to(os.path.relpath(version, link.parent))
    temp_link.replace(link)
    atomic.fsync_dir(link.parent)


def _prune(versions: Path, current: Path) -> None:
    finished = sorted(
        (p for p in versions.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
    )
    for folder in finished[:-KEEP_VERSIONS]:
        if folder != current:
            shutil.rmtree(folder, ignore_errors=True)


def export_knowledge_base(
    config: Config,
    store: Store,
    index: VectorIndex,
    *,
    scorer: str,
    catalog: Catalog,
    log: Any,
    now: float | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Write a complete export of the pairs ``index`` holds and publish it atomically."""
    progress = progress or Progress()
    started = time.monotonic()
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    link = export_path(config)
    versions = versions_dir(link)
    token = secrets.token_hex(4)
    work = versions / f".tmp-{os.getpid()}-{token}"
    try:
        versions.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(versions)
        work.mkdir()
        ids = sorted(index.ids)
        records = []
        for record in knowledge_base_rows(store, ids, scorer, catalog):
            records.append(record)
            if len(records) % 500 == 0 or len(records) == len(ids):
                progress.update("exporting", len(records), len(ids), "pairs")
        _write_durable(
            work / KB_FILE,
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
        )
        progress.update("exporting: index, checksums, publishing", len(ids), len(ids), "pairs")
        index.save(work)
        (work / INDEX_FILE).chmod(0o644)  # saved through mkstemp (0600); others read it
        _write_durable(
            work / LABELS_FILE,
            json.dumps({"labels_are": "pair ids (the `id` of knowledge_base.jsonl)", "ids": ids})
            + "\n",
        )
        meta = json.loads((work / META_FILE).read_text())
        _write_durable(work / README_FILE, render_readme(link, meta, len(records)))
        manifest = {
            "format": FORMAT_VERSION,
            "created_at": stamp.isoformat(),
            "inboxd_version": __version__,
            "root": str(config.root),
            "counts": {
                "pairs": len(records),
                "indicators": len({r["indicator"] for r in records if r["indicator"]}),
                "sessions": len({r["session"] for r in records if r["session"] is not None}),
                "imported_pairs": int(store.db.execute("SELECT count(*) FROM pairs").fetchone()[0]),
                "duplicates_folded": q.duplicate_count(store.db),
            },
            "quality": quality_stats(records),
            "embedding": {
                "model": meta["model"],
                "dimension": meta["dimension"],
                "space": meta["space"],
                "pair_vector": "normalise(embed(question) + embed(answer)), each L2-normalised",
                "query_vector": "normalise(embed(query))",
            },
            "index": {k: meta[k] for k in ("M", "ef_construction", "ef_search", "count")},
            "files": {
                name: {"sha256": _sha256(work / name), "bytes": (work / name).stat().st_size}
                for name in (KB_FILE, INDEX_FILE, META_FILE, LABELS_FILE, README_FILE)
            },
        }
        _write_durable(work / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
        atomic.fsync_dir(work)
        version = versions / f"{stamp.strftime('%Y%m%dT%H%M%SZ')}-{token}"
        work.rename(version)
        atomic.fsync_dir(versions)
        _publish(link, version)
        _prune(versions, version)
    except OSError as exc:
        raise ExportError(f"cannot write the export under {versions}: {exc}") from exc
    finally:
        # Renamed away on success; after a failure the half-written folder goes (after a
        # SIGKILL the next export removes it).
        shutil.rmtree(work, ignore_errors=True)
    duration = round((time.monotonic() - started) * 1000)
    log.info(
        EXPORTED, path=str(link), version=version.name, pairs=len(records), duration_ms=duration
    )
    return ExportResult(link, version, len(records), duration)


def verify_export(path: Path) -> dict[str, Any]:
    """The manifest of the export at ``path`` after checking every file's sha256."""
    try:
        manifest: dict[str, Any] = json.loads((path / MANIFEST_FILE).read_text())
        for name, entry in manifest["files"].items():
            if _sha256(path / name) != entry["sha256"]:
                raise ExportError(f"{path / name}: checksum differs from the manifest")
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(f"{path}: not a complete export ({exc})") from exc
    return manifest


def export_after_corpus_run(ctx: Services, now: float) -> None:
    """Hook run after each corpus refinement run: export what the index now holds.

    A failure is logged, not raised: the refinement itself succeeded, and the previous
    export is still there and intact.
    """
    try:
        export_services(ctx, now)
    except ExportError as exc:
        ctx.log.error(EXPORT_FAILED, error=str(exc))


def export_services(ctx: Services, now: float | None = None) -> ExportResult:
    """``inboxd export`` (and the hook): the knowledge base of the root ``ctx`` reads."""
    return export_knowledge_base(
        ctx.config,
        ctx.store,
        ctx.index,
        scorer=ctx.scorer.name,
        catalog=ctx.catalog,
        log=ctx.log,
        now=now,
        progress=ctx.progress,
    )
