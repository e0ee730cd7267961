"""What the daemon registers when the judge is Gemini: the corpus-run hook (one Batch
API job for everything the judge has not scored; interactive mode judges the backlog
directly) and the idle tick that polls open jobs without blocking the loop."""

from __future__ import annotations

from typing import Any

from daemon.core.errors import InboxdError
from daemon.core.logs import Event
from daemon.gemini import batch
from daemon.gemini import client as gc
from daemon.gemini.backlog import backlog
from daemon.gemini.costs import remaining
from daemon.gemini.enhance import enhance_corpus
from daemon.gemini.judge import JudgeScorer, judge_name
from daemon.refine.corpus import redecide_duplicates, sync_index
from daemon.services import Services
from daemon.store import corpus as q


class GeminiWork:
    """The Gemini provider's share of the daemon's corpus-level work."""

    def __init__(self, ctx: Services, client: Any = None) -> None:
        self.ctx = ctx
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = gc.make_client(self.ctx.config.gemini)
        return self._client

    def after_corpus_run(self, now: float) -> None:
        """Judge everything not yet scored by the configured judge, then (when on)
        rewrite the pairs it scored low."""
        ctx = self.ctx
        try:
            self._judge_backlog(ctx, now)
        except InboxdError as exc:
            ctx.log.warning(Event.JOB_FAILED, stage="judge", error=str(exc))
            return
        if ctx.config.gemini.enhance:
            try:
                enhance_corpus(ctx, self.client, now)
            except InboxdError as exc:
                ctx.log.warning(Event.JOB_FAILED, stage="enhance", error=str(exc))

    def _judge_backlog(self, ctx: Services, now: float) -> None:
        config = ctx.config
        pending = backlog(ctx.store, config)
        if not pending:
            return
        if config.gemini.mode == "batch":
            batch.submit(ctx.store, self.client, config, pending, now, ctx.log)
            return
        scorer = JudgeScorer(config, self.client)
        for start in range(0, len(pending), 50):
            scores = scorer.score(pending[start : start + 50])
            with ctx.store.transaction() as db:
                q.save_scores(db, scorer.name, [s.as_row() for s in scores], now)
            if len(scores) < len(pending[start : start + 50]) and _budget_gone(ctx):
                break

    def tick(self, now: float) -> bool:
        """Advance due jobs; True only when a job was created, finished or applied."""
        ctx = self.ctx
        if not batch.open_jobs(ctx.store):
            return False
        try:
            changed = batch.tick(ctx.store, self.client, ctx.config, now, ctx.log)
        except InboxdError as exc:
            ctx.log.warning(Event.JOB_FAILED, stage="judge", error=str(exc))
            return False
        if changed and not batch.open_jobs(ctx.store):
            self._repick_keepers(now)
        return changed

    def _repick_keepers(self, now: float) -> None:
        """With the judge's scores in, the best pair of each duplicate cluster may change."""
        index = self.ctx.index
        cfg = self.ctx.config
        redecide_duplicates(
            self.ctx.store,
            index.model_id,
            judge_name(cfg),
            cfg.dedup.threshold,
            cfg.dedup.neighbours,
            now,
        )
        sync_index(self.ctx.store, index)
        index.save(cfg.index_dir)


def _budget_gone(ctx: Services) -> bool:
    return remaining(ctx.store.db, ctx.config.gemini) <= 0 or bool(
        ctx.store.db.execute("SELECT count(*) FROM gemini_budget_stops").fetchone()[0]
    )


def attach(ctx: Services) -> GeminiWork | None:
    """The judge's corpus-run hook and idle tick when the judge is Gemini, else None
    (checks the key now, so a missing key stops start-up with a clear message rather
    than failing hours later)."""
    if ctx.config.scoring.provider != "gemini":
        return None
    gc.api_key()
    return GeminiWork(ctx)
