"""Retrieval metrics over ranked results: hit@k, MRR@10 and nDCG@10 at indicator level,
the 0.5 distance threshold (how often the top hit passes it and how often what passes is
right), and redundancy (near-duplicates in the top 5)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from daemon.providers.embedders import Matrix


@dataclass
class Side:
    """One searchable set of pairs: the refined index or the baseline."""

    name: str
    ids: np.ndarray  # pair ids, one per row of ``vectors``
    vectors: Matrix  # unit rows
    indicators: list[str | None]
    norm_hashes: list[str | None]


@dataclass
class QueryResult:
    rows: list[int]  # row numbers in the side, best first (top 10)
    distances: list[float]
    relevant: list[bool]
    total_relevant: int  # how many pairs of the side are relevant to the query
    redundant: int  # results in the top 5 that near-duplicate a better-ranked one


def search_exact(side: Side, queries: Matrix, k: int = 10) -> list[tuple[list[int], list[float]]]:
    """Exact cosine top-``k`` for each query row: a matrix product, chunked."""
    found: list[tuple[list[int], list[float]]] = []
    k = min(k, len(side.ids))
    for start in range(0, len(queries), 256):
        sims = queries[start : start + 256] @ side.vectors.T
        top = (
            np.argpartition(-sims, k - 1, axis=1)[:, :k]
            if k
            else np.zeros((len(sims), 0), dtype=np.int64)
        )
        for row, cand in zip(sims, top, strict=True):
            order = cand[np.argsort(-row[cand], kind="stable")]
            found.append(([int(i) for i in order], [round(1.0 - float(row[i]), 4) for i in order]))
    return found


def redundant_in_top(side: Side, rows: Sequence[int], threshold: float, top: int = 5) -> int:
    """Results that are (near-)duplicates of a better-ranked result in the top ``top``."""
    head = list(rows[:top])
    count = 0
    for j in range(1, len(head)):
        for i in range(j):
            a, b = head[i], head[j]
            same_text = (
                side.norm_hashes[a] is not None and side.norm_hashes[a] == side.norm_hashes[b]
            )
            if same_text or float(side.vectors[a] @ side.vectors[b]) >= threshold:
                count += 1
                break
    return count


def dcg(relevant: Sequence[bool]) -> float:
    return sum(1.0 / math.log2(rank + 2) for rank, rel in enumerate(relevant) if rel)


def summarise(results: Sequence[QueryResult], threshold: float) -> dict[str, float | int | None]:
    """The side's metrics over all queries (means; shares in 0..1)."""
    n = len(results)
    if n == 0:
        return {"queries": 0}
    hit1 = sum(bool(r.relevant[:1] and r.relevant[0]) for r in results)
    hit5 = sum(any(r.relevant[:5]) for r in results)
    mrr = sum(
        next((1.0 / (i + 1) for i, rel in enumerate(r.relevant[:10]) if rel), 0.0) for r in results
    )
    ndcg = 0.0
    for r in results:
        ideal = dcg([True] * min(10, r.total_relevant))
        ndcg += dcg(r.relevant[:10]) / ideal if ideal else 0.0
    passing = [r for r in results if r.distances and r.distances[0] < threshold]
    precise = sum(bool(r.relevant[0]) for r in passing)
    slots = sum(min(5, len(r.rows)) for r in results)
    redundant = sum(r.redundant for r in results)
    tops = [r.distances[0] for r in results if r.distances]
    return {
        "queries": n,
        "hit_at_1": round(hit1 / n, 4),
        "hit_at_5": round(hit5 / n, 4),
        "mrr_at_10": round(mrr / n, 4),
        "ndcg_at_10": round(ndcg / n, 4),
        "top_within_threshold": round(len(passing) / n, 4),
        "precision_within_threshold": round(precise / len(passing), 4) if passing else None,
        "redundancy": round(redundant / slots, 4) if slots else 0.0,
        "queries_with_redundant_results": round(sum(r.redundant > 0 for r in results) / n, 4),
        "median_top_distance": round(statistics.median(tops), 4) if tops else None,
    }


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test: the chance of a split at least this uneven if neither
    side were better (ties left out)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / float(2**n)
    return min(1.0, 2 * tail)
