"""Builds the typed :class:`~daemon.services.Services` from the config, once, for the
daemon and for every command that reads a root; the daemon also gets its hooks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from daemon.core.catalog import load_catalog
from daemon.core.config import Config
from daemon.core.errors import InboxdError
from daemon.core.logs import Logger
from daemon.gemini.hooks import attach as attach_gemini
from daemon.plan import agent_feedback
from daemon.plan import hooks as plan_hooks
from daemon.providers.embedders import Embedder, make_embedder
from daemon.providers.scorers import Scorer, make_scorer
from daemon.rag.chroma import attach as attach_chroma
from daemon.rag.export import export_after_corpus_run
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
    embedder = embedder or make_embedder(config)
    return Services(
        config=config,
        store=store,
        log=log,
        catalog=load_catalog(config.catalog_path),
        embedder=embedder,
        scorer=scorer or make_scorer(config),
        index=load_or_rebuild_index(
            store, embedder, config.index_dir, log, save=not store.readonly
        ),
    )


def attach_intake_hooks(services: Services) -> Services:
    """What the supervisor runs during intake: assignment files become sessions."""
    services.hooks.on_assignment = plan_hooks.assignment_reader(services)
    # A rejected version comes to rest here: the agent's feedback index follows.
    services.hooks.after_move.append(partial(agent_feedback.after_batch_moved, services))
    return services


def attach_worker_hooks(services: Services) -> Services:
    """What the worker runs beside the stages: reports and gap-fill after a corpus run,
    the automatic export, and the Gemini judge (its hook and its poll) when configured."""
    hooks = services.hooks
    hooks.after_corpus_run.append(partial(plan_hooks.after_corpus_run, services))
    if services.config.rag.auto_export:
        hooks.after_corpus_run.append(partial(export_after_corpus_run, services))
    gemini = attach_gemini(services)
    if gemini is not None:
        hooks.after_corpus_run.append(gemini.after_corpus_run)
        hooks.idle_work.append(gemini.tick)
    # Last, so they see what the hooks before them changed (judge scores, say).
    hooks.after_move.append(partial(agent_feedback.after_batch_moved, services))
    hooks.after_corpus_run.append(partial(agent_feedback.after_corpus_run, services))
    attach_chroma(services)  # registers nothing unless [rag] chroma_sync
    return services


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
