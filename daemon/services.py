"""The typed services every stage, hook and command is handed.

Built once from the config by :func:`daemon.runtime.wiring.build_services` (the daemon,
``search``, ``export``, ``eval``, ``ask`` and ``doctor`` alike) and passed down; nothing
is looked up by name. Hooks are typed lists that other packages append to at wiring
time, so the daemon's loop never needs to know who registered them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daemon.core.catalog import Catalog
from daemon.core.config import Config
from daemon.core.logs import Event, Logger
from daemon.core.progress import Progress
from daemon.core.records import Batch
from daemon.ingest.parsed_cache import ParsedCache
from daemon.providers.embedders import Embedder
from daemon.providers.scorers import Scorer
from daemon.refine.index import VectorIndex
from daemon.refine.rehome import rehome
from daemon.store import Connection, Store

#: Work that follows a corpus run (reports, export, a paid judge); gets the time.
CorpusHook = Callable[[float], None]
#: Work polled whenever no batch waits (a remote job, say); True when it did something.
IdleWork = Callable[[float], bool]
#: Told of every batch a mover moved (feedback for the agent, sinks to keep in step).
MoveHook = Callable[[Batch, float], None]
#: Reads a settled assignment file: (agent, relpath, text, now) -> registered?
AssignmentHandler = Callable[[str, str, str, float], bool]


@dataclass
class Hooks:
    """What other packages add to the daemon's loop."""

    after_corpus_run: list[CorpusHook] = field(default_factory=list)
    idle_work: list[IdleWork] = field(default_factory=list)
    after_move: list[MoveHook] = field(default_factory=list)
    on_assignment: AssignmentHandler | None = None


@dataclass
class Services:
    """One root's configured parts: the DB, the catalog, the providers and the index."""

    config: Config
    store: Store
    log: Logger
    catalog: Catalog
    embedder: Embedder
    scorer: Scorer
    index: VectorIndex
    hooks: Hooks = field(default_factory=Hooks)
    parsed_cache: ParsedCache = field(default_factory=ParsedCache)
    # Long work says how far it is here: the worker's is saved for `inboxd status`, and
    # a command on a terminal draws it.
    progress: Progress = field(default_factory=Progress)

    def rehome_clusters(
        self, db: Connection, superseded: list[int], now: float
    ) -> dict[str, Any] | None:
        """``Store.create_batch``'s ``on_supersede``: clusters whose kept pair only the
        ``superseded`` versions delivered get a new one, with this root's scorer, model
        and threshold (see :mod:`daemon.refine.rehome`)."""
        moved = rehome(
            db,
            superseded,
            now,
            scorer=self.scorer.name,
            model_id=self.embedder.model_id,
            threshold=self.config.dedup.threshold,
        )
        if moved is not None:
            # The audit row holds it too; the log is where an operator sees it happen.
            self.log.info(Event.CLUSTERS_REHOMED, superseded=superseded, **moved)
        return moved

    def resolve_indicator(self, text: str) -> tuple[str, int | None] | None:
        """Catalog id and session for a spelling (pair field, file field, name or path)."""
        found = self.catalog.resolve(text)
        return None if found is None else (found.id, found.session)
