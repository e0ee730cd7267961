"""Builds what the stages need from the config (catalog, providers, index) at start-up,
so the service stays a lifecycle and the stages stay plain functions."""

from __future__ import annotations

from daemon import plan_hooks
from daemon.catalog import Catalog, load_catalog
from daemon.embedders import make_embedder
from daemon.logs import Event
from daemon.refine import load_or_rebuild_index, refine_corpus
from daemon.scorers import make_scorer
from daemon.stages import Stage, StageContext
from daemon.stages.score import rescore_corpus
from daemon.states import BatchState
from daemon.validation import IndicatorResolver


def indicator_resolver(catalog: Catalog) -> IndicatorResolver:
    """Catalog id and session for a spelling (pair field, file field, name or path)."""

    def resolve(text: str) -> tuple[str, int | None] | None:
        found = catalog.resolve(text)
        return None if found is None else (found.id, found.session)

    return resolve


def wire(ctx: StageContext, stages: dict[BatchState, Stage]) -> dict[BatchState, Stage]:
    """Attach the configured services to ``ctx``; returns the stage table to run."""
    catalog = load_catalog(ctx.config.catalog_path)
    ctx.services["catalog"] = catalog
    ctx.resolve_indicator = indicator_resolver(catalog)
    ctx.services["on_assignment"] = plan_hooks.assignment_reader(ctx, catalog)
    ctx.services.setdefault("after_corpus_run", []).append(plan_hooks.after_corpus_run)
    if any(state in stages for state in (BatchState.IMPORTED, BatchState.EMBEDDED)):
        embedder = make_embedder(ctx.config)
        ctx.services["embedder"] = embedder
        ctx.services["scorer"] = make_scorer(ctx.config)
        index = load_or_rebuild_index(ctx.store, embedder, ctx.config.index_dir, ctx.log)
        ctx.services["index"] = index
        scorer_name = ctx.services["scorer"].name

        def corpus_run(now: float) -> None:
            cfg = ctx.config
            if cfg.scoring.provider != "gemini":  # the paid judge scores in its own hook
                rescore_corpus(ctx.store, embedder, ctx.services["scorer"], now)
            refine_corpus(
                ctx.store,
                index,
                scorer=scorer_name,
                threshold=cfg.dedup.threshold,
                neighbours=cfg.dedup.neighbours,
                index_dir=cfg.index_dir,
                log=ctx.log,
                now=now,
            )
            # Work that follows a corpus run (reports, export, paid stages) registers
            # itself here; each hook gets the context and the time. One failing hook is
            # logged and the others still run: the refinement itself is done, and an
            # error raised from here would stop the daemon on every restart.
            for hook in ctx.services.get("after_corpus_run", []):
                try:
                    hook(ctx, now)
                except Exception as exc:  # noqa: BLE001 - one hook's bug must not stop the rest
                    ctx.log.error(Event.CORPUS_HOOK_FAILED, hook=hook.__qualname__, error=repr(exc))

        ctx.services["refine_corpus"] = corpus_run
        if ctx.config.rag.auto_export:
            from daemon.export import export_after_corpus_run

            ctx.services.setdefault("after_corpus_run", []).append(export_after_corpus_run)
        from daemon.gemini.hooks import attach  # registers nothing unless configured

        attach(ctx)
        # Last, so they see what the hooks before them changed (judge scores, say).
        from daemon import agent_feedback

        ctx.services.setdefault("after_move", []).append(agent_feedback.after_batch_moved)
        ctx.services["after_corpus_run"].append(agent_feedback.after_corpus_run)
        from daemon.sinks import chroma  # registers nothing unless rag.chroma_sync

        chroma.attach(ctx)
    return stages
