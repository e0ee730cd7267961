"""The corpus-wide run (on ``ALL_SESSIONS_COMPLETE.txt`` or ``inboxd refine``): re-score
what the local scorer has not scored, re-decide duplicates over the whole corpus from
stored vectors, then the hooks other packages registered (reports, export, a paid judge)."""

from __future__ import annotations

from daemon.core.logs import Event
from daemon.refine.corpus import refine_corpus
from daemon.services import Services
from daemon.stages.score import rescore_corpus


def run_corpus(ctx: Services, now: float) -> None:
    """Refine the whole corpus, then run every after-corpus-run hook."""
    cfg = ctx.config
    hooks = ctx.hooks.after_corpus_run
    step = ctx.progress.steps(
        "corpus run", ["rescoring", "re-deciding duplicates", *(_hook_name(h) for h in hooks)]
    )
    step(0)
    if cfg.scoring.provider != "gemini":  # the paid judge scores in its own hook
        rescore_corpus(ctx.store, ctx.embedder, ctx.scorer, now)
    step(1)
    refine_corpus(
        ctx.store,
        ctx.index,
        scorer=ctx.scorer.name,
        threshold=cfg.dedup.threshold,
        neighbours=cfg.dedup.neighbours,
        index_dir=cfg.index_dir,
        log=ctx.log,
        now=now,
    )
    # One failing hook is logged and the others still run: the refinement itself is
    # done, and an error raised from here would stop the daemon on every restart.
    for i, hook in enumerate(hooks, start=2):
        step(i)
        try:
            hook(now)
        except Exception as exc:  # noqa: BLE001 - one hook's bug must not stop the rest
            name = getattr(getattr(hook, "func", hook), "__qualname__", repr(hook))
            ctx.log.error(Event.CORPUS_HOOK_FAILED, hook=name, error=repr(exc))


def _hook_name(hook: object) -> str:
    """A hook's step name for people, from its module: ``daemon.rag.export`` -> ``export``,
    ``daemon.plan.hooks`` -> ``plan``, ``daemon.gemini.hooks`` -> ``gemini``."""
    func = getattr(hook, "func", hook)  # a functools.partial names its function
    module = str(getattr(func, "__module__", "") or "hook").removeprefix("daemon.")
    return module.removesuffix(".hooks").rsplit(".", 1)[-1]
