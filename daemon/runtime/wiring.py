"""Builds the typed :class:`~daemon.services.Services` from the config, once, for the
daemon and for every command that reads a root. The daemon's hooks are attached apart
(``daemon.runtime.hooks``), so a reader such as ``inboxd search`` does not import the
plan, Gemini and RAG modules they need."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from daemon.core.catalog import load_catalog
from daemon.core.config import Config
from daemon.core.errors import InboxdError
from daemon.core.logs import Logger
from daemon.providers.embedders import Embedder, make_embedder
from daemon.providers.scorers import Scorer, make_scorer
from daemon.refine.corpus import load_or_rebuild_index
from daemon.search.searcher import Searcher
from daemon.services import Services
from daemon.store import Store


def build_services(
    config: Config,
    store: Store,
    log: Logger,
    *,
    embedder: Embedder | None = None,
    scorer: Scorer | None = None,
) -> Services:
    """The catalog, providers and index for ``store``.

    The index is loaded and checked against the DB (rebuilt from stored vectors when
    missing or out of step); a read-only store rebuilds it in memory only, since the
    daemon owns the saved one. Providers load their models lazily, on first use.
    ``embedder`` and ``scorer`` replace the configured ones (a test's or a benchmark's).
    """
    # Built with the store: a paid provider records its costs through it, so the daemon
    # keeps one write connection (the search thread's query embeddings included).
    embedder = embedder or make_embedder(config, store)
    return Services(
        config=config,
        store=store,
        log=log,
        catalog=load_catalog(config.catalog_path),
        embedder=embedder,
        scorer=scorer or make_scorer(config, store),
        index=load_or_rebuild_index(
            store, embedder, config.index_dir, log, save=not store.readonly
        ),
    )


def open_readonly(config: Config, log: Logger) -> Services:
    """Services over the root's DB opened read-only, for commands that run beside the
    daemon (search, export, eval, ask); the caller closes ``services.store``."""
    if not config.db_path.exists():
        raise InboxdError(f"no database under {config.root}; run `inboxd run` first")
    store = Store(config.db_path, readonly=True)
    try:
        return build_services(config, store, log)
    except BaseException:
        store.close()
        raise


@contextmanager
def reading(config: Config, log: Logger) -> Iterator[Services]:
    """:func:`open_readonly` for the length of a ``with`` block."""
    services = open_readonly(config, log)
    try:
        yield services
    finally:
        services.store.close()


def open_searcher(config: Config, log: Logger) -> Searcher:
    """A searcher over the root, read-only; the caller closes ``searcher.store``."""
    return Searcher.over(open_readonly(config, log))
