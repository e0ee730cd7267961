"""Refinement shared by the stages and the CLI: pair vectors from stored embeddings,
keeping the index in step with the DB, and the corpus-wide de-duplication re-run."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from daemon.core.logs import Event
from daemon.core.textid import norm_hash, text_hash
from daemon.providers.embedders import Embedder, Matrix, normalise_rows
from daemon.refine.index import VectorIndex, build
from daemon.store import Connection, Store
from daemon.store import corpus as q


def pair_vectors(store: Store, model_id: str, pairs: Sequence[dict[str, Any]]) -> Matrix:
    """One vector a pair: the normalised sum of its question's and answer's vectors.

    The question half lets a paraphrased question find the pair; the answer half keeps
    two different answers to the same question apart.
    """
    return stored_pair_vectors(store.db, model_id, pairs)


def stored_pair_vectors(db: Connection, model_id: str, pairs: Sequence[dict[str, Any]]) -> Matrix:
    """:func:`pair_vectors` on a connection (inside a transaction's effects, say)."""
    if not pairs:
        return np.zeros((0, 0), dtype=np.float32)
    questions, answers = stored_text_vectors(db, model_id, pairs)
    return normalise_rows(questions + answers)


def text_vectors(
    store: Store, model_id: str, pairs: Sequence[dict[str, Any]]
) -> tuple[Matrix, Matrix]:
    """The stored vectors of each pair's question and of its answer, rows in pair order."""
    return stored_text_vectors(store.db, model_id, pairs)


def stored_text_vectors(
    db: Connection, model_id: str, pairs: Sequence[dict[str, Any]]
) -> tuple[Matrix, Matrix]:
    """:func:`text_vectors` on a connection. The embed stage stored one vector per
    distinct text and model; nothing is embedded here (LookupError if one is missing)."""
    hashes = [(text_hash(p["question"]), text_hash(p["answer"])) for p in pairs]
    stored = q.load_embeddings(db, model_id, [h for pair in hashes for h in pair])
    missing = [h for pair in hashes for h in pair if h not in stored]
    if missing:
        raise LookupError(f"{len(missing)} text(s) have no {model_id} embedding yet")
    if not hashes:
        return np.zeros((0, 0), dtype=np.float32), np.zeros((0, 0), dtype=np.float32)
    questions: Matrix = np.stack([stored[qh] for qh, _ in hashes])
    answers: Matrix = np.stack([stored[ah] for _, ah in hashes])
    return questions, answers


def indexable_ids(store: Store) -> list[int]:
    """Active pairs whose duplicate check has run: exactly what the index must hold."""
    return q.indexable_pair_ids(store.db)


def sync_index(store: Store, index: VectorIndex) -> tuple[int, int]:
    """Add what the index lacks and drop what it should not hold; returns (added, removed)."""
    wanted = set(indexable_ids(store))
    have = index.ids
    extra = sorted(have - wanted)
    missing = sorted(wanted - have)
    index.remove(extra)
    for start in range(0, len(missing), 2000):
        chunk = missing[start : start + 2000]
        index.add(chunk, pair_vectors(store, index.model_id, q.pairs_by_id(store.db, chunk)))
    return len(missing), len(extra)


def load_or_rebuild_index(
    store: Store, embedder: Embedder, folder: Any, log: Any, save: bool = True
) -> VectorIndex:
    """The saved index if it agrees with the DB, else one rebuilt from stored vectors."""
    ids = indexable_ids(store)
    index = VectorIndex.load(folder, ids, embedder.model_id, embedder.dimension)
    if index is not None:
        log.info(Event.INDEX_LOADED, count=len(index), path=str(folder))
        return index
    started = time.monotonic()
    vectors = (
        pair_vectors(store, embedder.model_id, q.pairs_by_id(store.db, ids))
        if ids
        else np.zeros((0, embedder.dimension), dtype=np.float32)
    )
    index = build(ids, vectors, embedder.model_id, embedder.dimension)
    if save:
        index.save(folder)
    log.info(
        Event.INDEX_REBUILT,
        count=len(index),
        path=str(folder),
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    return index


@dataclass(frozen=True)
class DedupResult:
    pairs: int
    duplicates: int
    clusters: int


class UnionFind:
    """Disjoint sets over ``0..n-1`` (path halving; the smaller index is the root)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def link_neighbours(self, labels: Any, distances: Any, threshold: float) -> None:
        """Join each row with its kNN neighbours at cosine similarity >= ``threshold``."""
        for i in range(len(labels)):
            for label, distance in zip(labels[i], distances[i], strict=True):
                if label != i and 1.0 - distance >= threshold:
                    self.union(i, int(label))

    def clusters(self) -> dict[int, list[int]]:
        """Root -> members, every element once."""
        found: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            found.setdefault(self.find(i), []).append(i)
        return found


def redecide_duplicates(
    store: Store, model_id: str, scorer: str, threshold: float, neighbours: int, now: float
) -> DedupResult:
    """Re-decide every duplicate from stored vectors and scores (no re-embedding).

    A kNN graph (hnswlib, n log n) links pairs at or above ``threshold``; linked pairs
    and pairs with the same normalised text form clusters (union-find); the best-scored
    pair of a cluster is kept (ties: the oldest), the others point at it.
    """
    ids = q.live_checked_pair_ids(store.db)
    rows = q.pairs_by_id(store.db, ids)
    groups = UnionFind(len(ids))
    exact: dict[str, int] = {}
    for i, row in enumerate(rows):
        key = row["norm_hash"] or norm_hash(row["question"], row["answer"])
        if key in exact:
            groups.union(exact[key], i)
        else:
            exact[key] = i
    vectors = pair_vectors(store, model_id, rows) if rows else None
    if vectors is not None and len(ids) > 1:
        graph = build(list(range(len(ids))), vectors, model_id, vectors.shape[1])
        labels, distances = graph.knn_all(vectors, min(neighbours + 1, len(ids)))
        groups.link_neighbours(labels, distances, threshold)
    clusters = groups.clusters()
    scores = q.scores_for(store.db, scorer, ids)
    decided: list[tuple[int, int, float, str]] = []
    for members in clusters.values():
        if len(members) < 2:
            continue
        best = max(members, key=lambda i: (scores.get(ids[i], -1.0), -ids[i]))
        for i in members:
            if i == best:
                continue
            similarity = float(vectors[i] @ vectors[best]) if vectors is not None else 1.0
            same_text = (rows[i]["norm_hash"] or "") == (rows[best]["norm_hash"] or "-")
            decided.append((ids[i], ids[best], similarity, "exact" if same_text else "near"))
    with store.transaction() as db:
        q.replace_all_duplicates(db, decided, threshold, now)
    return DedupResult(len(ids), len(decided), sum(1 for m in clusters.values() if len(m) > 1))


def refine_corpus(
    store: Store,
    index: VectorIndex,
    *,
    scorer: str,
    threshold: float,
    neighbours: int,
    index_dir: Any,
    log: Any,
    now: float,
) -> dict[str, int]:
    """The corpus-level run: re-decide duplicates over everything, then resync the index."""
    started = time.monotonic()
    result = redecide_duplicates(store, index.model_id, scorer, threshold, neighbours, now)
    added, removed = sync_index(store, index)
    index.save(index_dir)
    summary = {
        "pairs": result.pairs,
        "duplicates": result.duplicates,
        "clusters": result.clusters,
        "index_added": added,
        "index_removed": removed,
        "index_size": len(index),
    }
    log.info(
        Event.DEDUP_DECIDED,
        threshold=threshold,
        **summary,
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    return summary
