"""embedded -> deduplicated: mark exact and near duplicates across the whole corpus.

Each pair not checked before is compared with the pairs already checked: the same
normalised text is an exact duplicate; a cosine similarity at or above the threshold
(nearest neighbour in the index, or an earlier pair of this batch) a near one.
Duplicates point at the kept pair of their cluster; nothing is deleted.
"""

from __future__ import annotations

import numpy as np

from daemon.core import heartbeat
from daemon.core.records import Batch
from daemon.core.textid import norm_hash
from daemon.refine.corpus import pair_vectors, sync_index
from daemon.refine.index import VectorIndex
from daemon.services import Services
from daemon.states import BatchState
from daemon.store import Connection
from daemon.store import corpus as q

#: Pairs decided between two heartbeats (the decisions are committed together at the end).
_BEAT_EVERY = 200


def dedupe(batch: Batch, ctx: Services, now: float) -> Batch:
    """Decide, for each new pair of the batch, whether it duplicates an earlier one."""
    embedder, index = ctx.embedder, ctx.index
    threshold = ctx.config.dedup.threshold
    db = ctx.store.db
    # Drop superseded versions' pairs first: nothing may be folded into a pair that
    # has left the corpus (the index then holds exactly the active, checked pairs).
    sync_index(ctx.store, index)
    pairs = [p for p in q.batch_pairs(db, batch.id) if p["dedup_at"] is None]
    vectors = pair_vectors(ctx.store, embedder.model_id, pairs)
    decisions: list[tuple[int, str, tuple[int, float, str] | None]] = []
    seen_exact: dict[str, int] = {}
    kept_rows: list[int] = []  # rows of this batch kept so far
    for row, pair in enumerate(pairs):
        if row % _BEAT_EVERY == 0:
            heartbeat.beat()  # a 5,000-pair file took 53 s here on a loaded machine
        key = norm_hash(pair["question"], pair["answer"])
        match: tuple[int, float, str] | None = None
        earlier = seen_exact.get(key) or _kept_same_text(ctx, index, key, pair["id"])
        if earlier is not None:
            match = (earlier, 1.0, "exact")
        else:
            match = _nearest(index, vectors, row, kept_rows, pairs, threshold)
        if match is None:
            kept_rows.append(row)
        seen_exact.setdefault(key, pair["id"])
        decisions.append((pair["id"], key, match))

    def effects(db: Connection) -> dict[str, object]:
        duplicates = 0
        for pair_id, key, match in decisions:
            q.mark_checked(db, pair_id, key, now)
            if match is not None:
                of, similarity, method = match
                q.set_duplicate(db, pair_id, q.kept_of(db, of), similarity, method, threshold, now)
                duplicates += 1
        return {"checked": len(decisions), "duplicates": duplicates, "threshold": threshold}

    return ctx.store.advance(batch, BatchState.DEDUPLICATED, now=now, effects=effects)


def _kept_same_text(ctx: Services, index: VectorIndex, key: str, pair_id: int) -> int | None:
    """An earlier pair with the same normalised text whose cluster is still in the corpus."""
    candidates = q.checked_pairs_with_norm(ctx.store.db, key, pair_id)
    active = index.ids if candidates else set()
    for earlier in candidates:
        if q.kept_of(ctx.store.db, earlier) in active:
            return earlier
    return None


def _nearest(
    index: VectorIndex,
    vectors: np.ndarray,
    row: int,
    kept_rows: list[int],
    pairs: list[dict[str, object]],
    threshold: float,
) -> tuple[int, float, str] | None:
    best: tuple[int, float, str] | None = None
    for label, distance in index.query(vectors[row], 1):
        if 1.0 - distance >= threshold:
            best = (label, 1.0 - distance, "near")
    if kept_rows:
        similarities = vectors[kept_rows] @ vectors[row]
        top = int(np.argmax(similarities))
        if similarities[top] >= threshold and (best is None or similarities[top] > best[1]):
            best = (int(pairs[kept_rows[top]]["id"]), float(similarities[top]), "near")  # type: ignore[call-overload]
    return best
