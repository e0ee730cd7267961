"""deduplicated -> scored: quality scores for the batch's pairs, then the best-scored
pair of every cluster they touch becomes the kept one."""

from __future__ import annotations

from typing import Any

from daemon.core.records import Batch
from daemon.core.textid import text_hash
from daemon.providers.embedders import Embedder
from daemon.providers.scorers import PairToScore, Scorer
from daemon.refine.rehome import best_member, point_at
from daemon.services import Services
from daemon.states import BatchState
from daemon.store import Connection, Store
from daemon.store import corpus as q


def score_missing(
    db: Connection, embedder: Embedder, scorer: Scorer, pairs: list[dict[str, Any]]
) -> list[dict[str, object]]:
    """Scores (as rows to save) of the pairs this scorer (name and version) has not
    scored yet; relevance from the stored question and answer vectors."""
    done = q.scored_hashes(db, scorer.name, [p["hash"] for p in pairs])
    todo = [p for p in pairs if p["hash"] not in done]
    vectors = q.load_embeddings(
        db, embedder.model_id, [text_hash(t) for p in todo for t in (p["question"], p["answer"])]
    )
    to_score = []
    for pair in todo:
        qv, av = vectors.get(text_hash(pair["question"])), vectors.get(text_hash(pair["answer"]))
        relevance = float(qv @ av) if qv is not None and av is not None else None
        to_score.append(PairToScore(pair["hash"], pair["question"], pair["answer"], relevance))
    return [s.as_row() for s in scorer.score(to_score)]


def rescore_corpus(store: Store, embedder: Embedder, scorer: Scorer, now: float) -> int:
    """Score every active pair the scorer has not scored (after a rubric version change,
    say); the corpus run calls it before de-duplication picks the kept pairs."""
    pairs = q.pairs_by_id(store.db, q.active_pair_ids(store.db))
    rows = score_missing(store.db, embedder, scorer, pairs)
    with store.transaction() as db:
        q.save_scores(db, scorer.name, rows, now)
    return len(rows)


def score(batch: Batch, ctx: Services, now: float) -> Batch:
    """Score pairs not yet scored by this scorer (name and version), then re-pick keepers."""
    embedder, scorer = ctx.embedder, ctx.scorer
    pairs = q.batch_pairs(ctx.store.db, batch.id)
    results = score_missing(ctx.store.db, embedder, scorer, pairs)

    def effects(db: Connection) -> dict[str, object]:
        q.save_scores(db, scorer.name, results, now)
        swapped = _keep_best(db, ctx, [p["id"] for p in pairs], scorer.name, now)
        return {"scored": len(results), "scorer": scorer.name, "keepers_changed": swapped}

    return ctx.store.advance(batch, BatchState.SCORED, now=now, effects=effects)


def _keep_best(db: Connection, ctx: Services, pair_ids: list[int], scorer: str, now: float) -> int:
    """Make the best-scored live member of each touched cluster its kept pair (a member
    no version delivers any more must not be kept: its duplicates would leave with it)."""
    changed = 0
    for kept in {q.kept_of(db, pair_id) for pair_id in pair_ids}:
        members = q.cluster_members(db, kept)
        live = q.live_among(db, members)
        if len(members) < 2 or not live:
            continue
        best = best_member(db, scorer, live)
        if best == kept:
            continue
        point_at(
            db,
            best,
            members,
            model_id=ctx.embedder.model_id,
            threshold=ctx.config.dedup.threshold,
            now=now,
        )
        changed += 1
    return changed
