"""``inboxd eval``: retrieval quality of the refined index against the baseline.

Both sides are searched on the same queries in one run, from the vectors already
stored in SQLite (only the queries are embedded):

- refined: the pairs the index holds (active, duplicates folded) scoring at least
  ``[rag] min_quality``: what ``ask`` and the export serve;
- baseline: every imported pair, duplicates, superseded versions and poor pairs included,
  as if the agents' files had been loaded as delivered.

Both are searched exactly (a matrix product), so the difference measured is the
corpus's, not the approximate index's. The report goes to ``state/reports/eval.json``,
``eval.md`` and ``eval_distances.png``.

``improved``: the refined side is at least as good on hit@5 and on redundancy, and
strictly better on one of them. ``significantly_improved``: improved, and a strict win
is unlikely to be chance: over the queries where the two sides differ (hit@5 found or
not; fewer or more near-duplicates in the top 5), a two-sided exact sign test gives
p < 0.05.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from daemon.core.config import Config
from daemon.core.errors import InboxdError
from daemon.core.progress import Progress
from daemon.core.textid import text_hash
from daemon.providers.embedders import Embedder, normalise_rows
from daemon.rag.evaluation.metrics import (
    QueryResult,
    Side,
    redundant_in_top,
    search_exact,
    sign_test,
    summarise,
)
from daemon.rag.evaluation.queries import EvalQuery, builtin_queries, load_user_queries, sample
from daemon.rag.evaluation.report import write_reports
from daemon.services import Services
from daemon.store import Store
from daemon.store import corpus as q

EVALUATED = "eval.completed"
SIGNIFICANCE = 0.05
RULE = (
    "improved: refined >= baseline on hit@5 and refined <= baseline on redundancy, strictly"
    " better on at least one. significantly_improved: improved, and a strict win has"
    f" p < {SIGNIFICANCE} in a two-sided exact sign test over the queries where the sides"
    " differ."
)


class EvalError(InboxdError):
    """The evaluation cannot run (no corpus, no queries)."""


def _load_sides(
    store: Store, model_id: str, scorer: str, min_quality: float
) -> tuple[Side, Side, int]:
    """(refined, baseline, pairs without stored vectors) from the DB; never embeds."""
    from daemon.refine.corpus import indexable_ids

    rows = store.db.execute(
        "SELECT id, question, answer, indicator, norm_hash FROM pairs ORDER BY id"
    ).fetchall()
    hashes = [(text_hash(r[1]), text_hash(r[2])) for r in rows]
    stored = q.load_embeddings(store.db, model_id, [h for pair in hashes for h in pair])
    keep = [i for i, (qh, ah) in enumerate(hashes) if qh in stored and ah in stored]
    if not keep:
        raise EvalError("no pair has stored embeddings yet; let the daemon refine first")
    vectors = normalise_rows(np.stack([stored[hashes[i][0]] + stored[hashes[i][1]] for i in keep]))
    ids = np.asarray([int(rows[i][0]) for i in keep], dtype=np.int64)
    indicators = [rows[i][3] for i in keep]
    norms = [rows[i][4] for i in keep]
    baseline = Side("baseline", ids, vectors, indicators, norms)
    scores = q.scores_for(store.db, scorer, ids.tolist())
    indexed = set(indexable_ids(store))
    chosen = [
        row
        for row, pid in enumerate(ids.tolist())
        if pid in indexed and scores.get(pid, -1.0) >= min_quality
    ]
    refined = Side(
        "refined",
        ids[chosen],
        vectors[chosen],
        [indicators[i] for i in chosen],
        [norms[i] for i in chosen],
    )
    return refined, baseline, len(rows) - len(keep)


def _clusters(store: Store) -> dict[int, int]:
    """Pair id -> the kept pair of its duplicate cluster (absent: kept itself)."""
    return {
        int(pid): int(kept)
        for pid, kept in store.db.execute("SELECT pair_id, duplicate_of FROM duplicates")
    }


def _relevant(
    pair_id: int,
    indicator: str | None,
    query: EvalQuery,
    roots: set[int],
    kept_of: dict[int, int],
) -> bool:
    """Of an expected indicator, or in the duplicate cluster of an expected pair."""
    if indicator is not None and indicator in query.indicators:
        return True
    return bool(roots) and kept_of.get(pair_id, pair_id) in roots


def _judge(
    side: Side,
    queries: list[EvalQuery],
    found: list[tuple[list[int], list[float]]],
    kept_of: dict[int, int],
    dup_threshold: float,
) -> list[QueryResult]:
    counts = Counter(side.indicators)
    side_ids = side.ids.tolist()
    results = []
    for query, (rows, distances) in zip(queries, found, strict=True):
        roots = {kept_of.get(p, p) for p in query.pair_ids}

        total = sum(counts[i] for i in query.indicators)
        if roots:
            total += sum(
                1
                for pid, ind in zip(side_ids, side.indicators, strict=True)
                if ind not in query.indicators and kept_of.get(pid, pid) in roots
            )
        results.append(
            QueryResult(
                rows,
                distances,
                [_relevant(side_ids[r], side.indicators[r], query, roots, kept_of) for r in rows],
                total,
                redundant_in_top(side, rows, dup_threshold),
            )
        )
    return results


def _compare(
    refined: list[QueryResult], baseline: list[QueryResult]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-query wins and losses of the refined side, and their sign-test p-values."""
    hit = [
        (any(r.relevant[:5]), any(b.relevant[:5])) for r, b in zip(refined, baseline, strict=True)
    ]
    red = [(r.redundant, b.redundant) for r, b in zip(refined, baseline, strict=True)]
    hit_wins, hit_losses = sum(r and not b for r, b in hit), sum(b and not r for r, b in hit)
    red_wins, red_losses = sum(r < b for r, b in red), sum(r > b for r, b in red)
    return (
        {"wins": hit_wins, "losses": hit_losses, "p": round(sign_test(hit_wins, hit_losses), 6)},
        {"wins": red_wins, "losses": red_losses, "p": round(sign_test(red_wins, red_losses), 6)},
    )


def _verdict(
    refined: dict[str, Any], baseline: dict[str, Any], hit: dict[str, Any], red: dict[str, Any]
) -> tuple[bool, bool]:
    h_r, h_b = refined["hit_at_5"], baseline["hit_at_5"]
    d_r, d_b = refined["redundancy"], baseline["redundancy"]
    improved = h_r >= h_b and d_r <= d_b and (h_r > h_b or d_r < d_b)
    significant = improved and (
        (h_r > h_b and hit["p"] < SIGNIFICANCE) or (d_r < d_b and red["p"] < SIGNIFICANCE)
    )
    return improved, significant


def _summary(report: dict[str, Any]) -> str:
    r, b = report["refined"], report["baseline"]
    verdict = "improved" if report["improved"] else "not improved"
    if report["significantly_improved"]:
        verdict += " (significant)"
    return (
        f"On {r['queries']} queries the refined index ({r['pairs']} pairs) vs the baseline"
        f" ({b['pairs']} pairs): hit@5 {r['hit_at_5']:.3f} vs {b['hit_at_5']:.3f},"
        f" redundancy {r['redundancy']:.3f} vs {b['redundancy']:.3f},"
        f" MRR@10 {r['mrr_at_10']:.3f} vs {b['mrr_at_10']:.3f},"
        f" top hit within {report['threshold']} {r['top_within_threshold']:.1%} vs"
        f" {b['top_within_threshold']:.1%}: {verdict}."
    )


def run_evaluation(
    config: Config,
    store: Store,
    embedder: Embedder,
    *,
    scorer: str,
    catalog: Any,
    log: Any,
    queries_path: Path | None = None,
    builtin: bool = True,
    limit: int | None = None,
    now: float | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Evaluate both sides on the same queries; returns the report (not yet written)."""
    progress = progress or Progress()
    started = time.monotonic()
    refined, baseline, unembedded = _load_sides(
        store, embedder.model_id, scorer, config.rag.min_quality
    )
    queries: list[EvalQuery] = []
    if builtin:
        present = {i for i in refined.indicators if i is not None}
        queries += builtin_queries(catalog, present)
    if queries_path is not None:
        queries += load_user_queries(queries_path, catalog)
    queries = sample(queries, limit)
    if not queries:
        raise EvalError("no queries: the corpus has no catalog indicator; give --queries FILE")
    vectors = _embed_queries(embedder, [query.text for query in queries], progress)
    kept_of = _clusters(store)
    threshold = config.search.max_distance
    judged: dict[str, list[QueryResult]] = {}
    for side in (refined, baseline):
        progress.update(f"eval: searching the {side.name} side", len(queries), len(queries))
        judged[side.name] = _judge(
            side, queries, search_exact(side, vectors), kept_of, config.dedup.threshold
        )
    report: dict[str, Any] = {
        "at": datetime.fromtimestamp(time.time() if now is None else now, UTC).isoformat(),
    }
    sides = {}
    for side in (refined, baseline):
        sides[side.name] = {"pairs": len(side.ids), **summarise(judged[side.name], threshold)}
    hit, red = _compare(judged["refined"], judged["baseline"])
    improved, significant = _verdict(sides["refined"], sides["baseline"], hit, red)
    report.update(
        improved=improved,
        significantly_improved=significant,
        summary="",
        refined=sides["refined"],
        baseline=sides["baseline"],
        rule=RULE,
        threshold=threshold,
        significance={"hit_at_5": hit, "redundancy": red},
        queries={
            "count": len(queries),
            "builtin": sum(qr.origin.startswith("builtin") for qr in queries),
            "user": sum(qr.origin.startswith("user") for qr in queries),
            "file": str(queries_path) if queries_path else None,
        },
        embedded_texts=len(queries),  # the queries only: the corpus comes from the DB
        pairs_without_vectors=unembedded,
        min_quality=config.rag.min_quality,
        duplicate_threshold=config.dedup.threshold,
        top_distances={
            name: [r.distances[0] for r in judged[name] if r.distances] for name in judged
        },
        misses=[
            {"query": qr.text, "expected": sorted(qr.indicators), "got": _top_indicator(refined, r)}
            for qr, r in zip(queries, judged["refined"], strict=True)
            if not any(r.relevant[:5])
        ][:25],
    )
    report["summary"] = _summary(report)
    report["duration_ms"] = round((time.monotonic() - started) * 1000)
    log.info(
        EVALUATED,
        queries=len(queries),
        improved=improved,
        significantly_improved=significant,
        duration_ms=report["duration_ms"],
    )
    return report


#: Queries embedded per call: progress between calls; the Gemini embedder's cap.
_QUERY_CHUNK = 100


def _embed_queries(embedder: Embedder, texts: list[str], progress: Progress) -> Any:
    """The queries' vectors, a chunk at a time so that progress can be shown."""
    chunks = []
    for start in range(0, len(texts), _QUERY_CHUNK):
        progress.update("eval: embedding queries", start, len(texts), "queries")
        chunks.append(embedder.embed_queries(texts[start : start + _QUERY_CHUNK]))
    return np.concatenate(chunks)


def _top_indicator(side: Side, result: QueryResult) -> str | None:
    return side.indicators[result.rows[0]] if result.rows else None


def evaluate(
    ctx: Services,
    *,
    queries_path: Path | None = None,
    builtin: bool = True,
    limit: int | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """``inboxd eval`` over a root's services: evaluate, then write the reports."""
    report = run_evaluation(
        ctx.config,
        ctx.store,
        ctx.embedder,
        scorer=ctx.scorer.name,
        catalog=ctx.catalog,
        log=ctx.log,
        queries_path=queries_path,
        builtin=builtin,
        limit=limit,
        progress=ctx.progress,
    )
    return report, write_reports(report, ctx.config.reports_dir)
