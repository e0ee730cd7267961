"""A Chroma collection kept equal to the refined corpus, for RAG stacks built on Chroma.

The collection holds exactly the pairs inboxd's own index holds (active: not superseded,
not folded as duplicates, duplicate check done): id = the pair id, the embedding =
inboxd's stored vector (nothing is embedded again), the document = question and answer,
and scalar metadata (indicator, session, quality, tier, sources joined...). Its
distance space is cosine, as inboxd's, so a threshold such as ``< 0.5`` means the same
in both. Each sync compares the collection with the DB through a fingerprint stored in
each record's metadata: new and changed pairs are upserted, pairs that stopped being
active are deleted, unchanged ones are not touched. A collection that inboxd made for
another embedding model is rebuilt; one it did not make is refused.

chromadb is an optional extra (``pip install 'inboxd[chroma]'``); it is imported only
here, on first use. One writer at a time: a sync holds ``PATH/.inboxd-sync.lock``.
The records, their fingerprints, the ledger and the lock: ``daemon.rag.chroma_ledger``.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.core.catalog import Catalog
from daemon.core.config import Config
from daemon.core.errors import ConfigError, InboxdError
from daemon.core.logs import Event
from daemon.core.records import Batch
from daemon.rag.chroma_ledger import (
    FINGERPRINT,
    held_fingerprints,
    locked,
    records,
    write_ledger,
)
from daemon.refine.corpus import indexable_ids, pair_vectors
from daemon.services import Services
from daemon.states import BatchState
from daemon.store import Store
from daemon.store import corpus as q

INSTALL_HINT = "pip install 'inboxd[chroma]'"
SPACE = "cosine"
_MADE_BY = "inboxd_model"  # collection metadata: the embedding model of its vectors


class ChromaSinkError(InboxdError):
    """The Chroma collection cannot be written (or is not inboxd's to write)."""


@dataclass(frozen=True)
class Target:
    """Which collection to sync, and what its records are made of."""

    path: Path  # the PersistentClient folder
    name: str  # the collection
    model_id: str  # the embedding model of the stored vectors
    scorer: str  # whose quality the metadata carries
    catalog: Catalog


@dataclass(frozen=True)
class SyncResult:
    path: Path
    collection: str
    pairs: int  # what the collection holds now
    upserted: int
    deleted: int
    remaining: int  # changed pairs left for the next call (``max_upserts``)
    recreated: bool
    duration_ms: int

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "path": str(self.path)}


def chroma_available() -> bool:
    """Whether the chroma extra is installed (without importing it)."""
    return importlib.util.find_spec("chromadb") is not None


def require_chroma(what: str) -> None:
    """Raise a ConfigError naming the extra to install when chromadb is missing."""
    if not chroma_available():
        raise ConfigError(f"{what} needs chromadb, which is not installed: {INSTALL_HINT}")


def chroma_path(config: Config, override: Path | None = None) -> Path:
    """Where the collection lives: ``override``, else ``rag.chroma_path``, else
    ``state/chroma``; relative paths are taken from the root."""
    chosen = override or config.rag.chroma_path
    if chosen is None:
        return config.state_dir / "chroma"
    return chosen if chosen.is_absolute() else config.root / chosen


# -- the collection ------------------------------------------------------------------------


def _chromadb() -> Any:
    try:
        # Lazy: chromadb is an optional extra and slow to import; only the Chroma sink needs it.
        import chromadb
    except ImportError as exc:
        raise ChromaSinkError(
            f"the Chroma sink needs chromadb, which is not installed: {INSTALL_HINT} ({exc})"
        ) from exc
    return chromadb


def _collection(client: Any, name: str, model_id: str, path: Path) -> tuple[Any, bool]:
    """The collection, created (cosine) if missing; recreated if inboxd made it for other
    vectors. Returns it and whether it was (re)created over an existing one."""
    chromadb = _chromadb()
    metadata = {_MADE_BY: model_id, "inboxd_space": SPACE}
    try:
        existing = client.get_collection(name, embedding_function=None)
    except chromadb.errors.NotFoundError:
        existing = None
    recreated = False
    if existing is not None:
        # The collection's own metadata says what inboxd made it for (reading
        # `configuration` of a collection without an embedding function warns).
        made = existing.metadata or {}
        made_for = made.get(_MADE_BY)
        if made_for == model_id and made.get("inboxd_space") == SPACE:
            return existing, False
        if made_for is None and existing.count():
            raise ChromaSinkError(
                f"the Chroma collection {name!r} in {path} holds {existing.count()} records"
                " that inboxd did not write; choose another [rag] chroma_collection or path"
            )
        client.delete_collection(name)  # inboxd's, for another model or space: rebuilt
        recreated = True
    created = client.create_collection(
        name,
        configuration={"hnsw": {"space": SPACE}},
        metadata=metadata,
        embedding_function=None,  # vectors come from inboxd; Chroma must not embed
    )
    return created, recreated


def sync_collection(
    store: Store, target: Target, *, wait: bool = True, max_upserts: int | None = None
) -> SyncResult | None:
    """Make the target collection equal the active corpus (with ``max_upserts``, move it
    that far towards it: ``remaining`` says what is left). Returns None when ``wait`` is
    off and another sync holds the lock (the next one catches up)."""
    chromadb = _chromadb()
    started = time.monotonic()
    path = target.path
    with locked(path, wait=wait) as held:
        if not held:
            return None
        try:
            client = chromadb.PersistentClient(
                path=str(path),
                settings=chromadb.config.Settings(anonymized_telemetry=False),
            )
        except Exception as exc:
            raise ChromaSinkError(f"cannot open the Chroma database at {path}: {exc}") from exc
        with client:
            try:
                return _sync(client, store, target, started, max_upserts)
            except InboxdError:
                raise
            except (chromadb.errors.ChromaError, ValueError, OSError) as exc:
                raise ChromaSinkError(f"Chroma refused the sync of {path}: {exc}") from exc


def _sync(
    client: Any, store: Store, target: Target, started: float, max_upserts: int | None
) -> SyncResult:
    path, name, model_id = target.path, target.name, target.model_id
    collection, recreated = _collection(client, name, model_id, path)
    batch = max(1, min(2000, int(client.get_max_batch_size())))
    wanted = records(store, indexable_ids(store), target.scorer, target.catalog, model_id)
    have = held_fingerprints(collection, path, name, model_id, batch)
    stale = sorted(set(have) - set(wanted), key=int)
    changed = [i for i in wanted if have.get(i) != wanted[i][1][FINGERPRINT]]
    remaining = max(0, len(changed) - max_upserts) if max_upserts is not None else 0
    changed = changed[: len(changed) - remaining]
    for start in range(0, len(stale), batch):
        collection.delete(ids=stale[start : start + batch])
    for start in range(0, len(changed), batch):
        chunk = changed[start : start + batch]
        rows = q.pairs_by_id(store.db, [int(i) for i in chunk])
        by_id = {str(r["id"]): r for r in rows}
        vectors = pair_vectors(store, model_id, [by_id[i] for i in chunk])
        collection.upsert(
            ids=chunk,
            embeddings=vectors,
            documents=[wanted[i][0] for i in chunk],
            metadatas=[wanted[i][1] for i in chunk],
        )
    # The ledger says what the collection now holds: the old fingerprints of what is
    # left for a later call, the new ones of what was written.
    held = {i: fp for i, fp in have.items() if i in wanted}
    held.update((i, wanted[i][1][FINGERPRINT]) for i in changed)
    write_ledger(collection, path, name, model_id, held)
    return SyncResult(
        path=path,
        collection=name,
        pairs=collection.count(),
        upserted=len(changed),
        deleted=len(stale),
        remaining=remaining,
        recreated=recreated,
        duration_ms=round((time.monotonic() - started) * 1000),
    )


# -- the command and the daemon's hooks ----------------------------------------------------


def run_chroma_export(
    ctx: Services, path: Path | None = None, collection: str | None = None
) -> SyncResult:
    """``inboxd export --to chroma [PATH]``: sync from the root ``ctx`` reads (opened
    read-only), waiting for a sync the daemon may be running."""
    _chromadb()
    config = ctx.config
    target = Target(
        chroma_path(config, path),
        collection or config.rag.chroma_collection,
        ctx.embedder.model_id,
        ctx.scorer.name,
        ctx.catalog,
    )
    result = sync_collection(ctx.store, target)
    if result is None:  # cannot happen: this call waits for the lock
        raise ChromaSinkError(f"the Chroma collection at {path} is locked by another sync")
    return result


class DaemonSync:
    """The daemon's side: an indexed batch marks the collection stale and the next idle
    tick syncs it, so a burst of files costs one sync when the burst is done, while a
    file arriving alone is synced right after it is indexed; a corpus run syncs at once.
    Stale at start, so a restarted daemon catches up (cheap when nothing changed)."""

    RETRY_SECONDS = 60.0  # after a failed sync; the next indexed batch retries sooner
    # Upserts per tick: a whole corpus (17,000 pairs, ~40 s) is written in steps of a
    # few seconds, and files arriving meanwhile are taken between them.
    STEP = 2000

    def __init__(self, ctx: Services) -> None:
        self.ctx = ctx
        self.stale = True
        self.not_before = 0.0

    def after_batch_moved(self, batch: Batch, now: float) -> None:
        """Mover hook: an indexed batch changed the corpus."""
        if batch.state is BatchState.INDEXED:
            self.stale, self.not_before = True, 0.0

    def tick(self, now: float) -> bool:
        """Idle work: sync if stale; True when it synced."""
        if not self.stale or now < self.not_before:
            return False
        return self.sync(now, "idle after indexed batches", self.STEP)

    def after_corpus_run(self, now: float) -> None:
        """Corpus hook: duplicates were re-decided; sync all of it now (``inboxd refine``
        exits right after)."""
        self.sync(now, "corpus run", None)

    def sync(self, now: float, trigger: str, step: int | None) -> bool:
        """Sync (at most ``step`` upserts); True when it wrote to the collection."""
        ctx = self.ctx
        try:
            target = Target(
                chroma_path(ctx.config),
                ctx.config.rag.chroma_collection,
                ctx.embedder.model_id,
                ctx.scorer.name,
                ctx.catalog,
            )
            # Never wait on a person's `export --to chroma`: retry on a later tick.
            result = sync_collection(ctx.store, target, wait=False, max_upserts=step)
        except InboxdError as exc:
            self.not_before = now + self.RETRY_SECONDS
            ctx.log.error(Event.CHROMA_SYNC_FAILED, trigger=trigger, error=str(exc))
            return False
        if result is None:
            self.not_before = now + 1.0
            ctx.log.debug(
                Event.CHROMA_SYNCED, trigger=trigger, skipped="another sync holds the lock"
            )
            return False
        self.stale = result.remaining > 0
        ctx.log.info(Event.CHROMA_SYNCED, trigger=trigger, **result.as_dict())
        return True


def attach(ctx: Services) -> None:
    """Register the hooks when ``rag.chroma_sync`` is on; stop start-up with the extra to
    install when chromadb is missing."""
    if not ctx.config.rag.chroma_sync:
        return
    require_chroma("rag.chroma_sync = true")
    daemon_sync = DaemonSync(ctx)
    ctx.hooks.after_move.append(daemon_sync.after_batch_moved)
    ctx.hooks.after_corpus_run.append(daemon_sync.after_corpus_run)
    ctx.hooks.idle_work.append(daemon_sync.tick)
