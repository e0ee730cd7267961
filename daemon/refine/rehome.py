"""Which pair a duplicate cluster keeps, and moving a cluster to a new kept pair.

A cluster is its kept pair and the pairs that point at it in ``duplicates``. Only the
kept pair is active, so a kept pair that leaves the corpus (every version of a file
that delivered it superseded) would take its live duplicates with it. :func:`rehome`
runs inside the transaction that supersedes those versions and gives each such cluster
the best-scored live member as its new kept pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daemon.core.errors import PermanentError
from daemon.refine.corpus import stored_pair_vectors
from daemon.store import Connection
from daemon.store import corpus as q


def best_member(db: Connection, scorer: str, candidates: Sequence[int]) -> int:
    """The best-scored of ``candidates`` by ``scorer`` (unscored last; ties: lowest id)."""
    scores = q.scores_for(db, scorer, candidates)
    return max(candidates, key=lambda i: (scores.get(i, -1.0), -i))


def point_at(
    db: Connection,
    keeper: int,
    members: Sequence[int],
    *,
    model_id: str,
    threshold: float,
    now: float,
) -> None:
    """Make ``keeper`` the kept pair of ``members``: every other member points at it with
    its similarity to it recomputed from the stored vectors."""
    rows = q.pairs_by_id(db, members)
    norm = {r["id"]: r["norm_hash"] for r in rows}
    vectors = dict(
        zip([r["id"] for r in rows], stored_pair_vectors(db, model_id, rows), strict=True)
    )
    q.clear_duplicate(db, keeper)
    for member in members:
        if member == keeper:
            continue
        same_text = norm[member] is not None and norm[member] == norm[keeper]
        similarity = float(vectors[member] @ vectors[keeper])
        method = "exact" if same_text else "near"
        q.set_duplicate(db, member, keeper, similarity, method, threshold, now)


def rehome(
    db: Connection,
    superseded: Sequence[int],
    now: float,
    *,
    scorer: str,
    model_id: str,
    threshold: float,
) -> dict[str, Any] | None:
    """Give every cluster whose kept pair only ``superseded`` batches delivered a new kept
    pair: its best-scored live member. Returns ``{"rehomed": {old: new}}`` for the audit
    row, or None when no cluster moved.

    Members that are not live (the old kept pair included) point at the new one too, so
    a pair that a later version delivers again rejoins its cluster instead of standing
    beside it; the score stage then picks the best live member again.
    """
    moved: dict[str, int] = {}
    for dead in q.dead_keepers(db, superseded):
        members = q.cluster_members(db, dead)
        live = q.live_among(db, members)
        if not live:
            continue  # the whole cluster left the corpus: nothing is missing from it
        keeper = best_member(db, scorer, live)
        try:
            point_at(db, keeper, members, model_id=model_id, threshold=threshold, now=now)
        except LookupError as exc:
            raise PermanentError(
                f"cannot move the duplicates of pair {dead} to pair {keeper} while its file's"
                f" old version is superseded: {exc} (was the embedding model changed?)"
            ) from exc
        moved[str(dead)] = keeper
    return {"rehomed": moved} if moved else None
