"""Retrieval quality on the committed evaluation sets (``benchmarks/data/retrieval/``,
extracted by ``retrieval_sets.py`` from libraries other people wrote): inboxd's dense,
lexical and hybrid search next to a bare baseline, in the same run.

- **baseline**: what a user builds in ten lines: all-MiniLM-L6-v2, one vector per pair of
  ``question + " " + answer``, exact cosine, no cut-off. By default through inboxd's
  ONNX export of the packaged model (the same vectors as sentence-transformers, cosine
  >= 0.99999 per text, checked at every export); ``--baseline-encoder st`` runs it
  through sentence-transformers on torch instead.
- **inboxd**: the set is delivered as a Q&A file into ``outbox/<agent>/`` of a temp root
  and goes through the real pipeline (``run --once``: import, embed, de-duplicate, score,
  index); queries go through the real :class:`~daemon.search.searcher.Searcher` as
  ``inboxd search`` calls it (dense cut at the configured 0.5; hybrid uncut).

A hit is relevant when its pair describes the query's indicator (the set's ``key``), or is
the kept pair of a duplicate cluster holding such a pair (de-duplication folds copies).
Metrics per set and mode: hit@1, hit@5, MRR@10, the share of queries whose top hit is
under the 0.5 distance threshold, and the share that got any answer.

    .venv/bin/python benchmarks/retrieval.py                  # every set, table
    .venv/bin/python benchmarks/retrieval.py --set stockstats --json
    .venv/bin/python benchmarks/retrieval.py --levers --work /tmp/rq   # + each lever alone
    .venv/bin/python benchmarks/retrieval.py --misses hybrid --work /tmp/rq
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `benchmarks` and `daemon` importable
    sys.path.insert(0, str(REPO))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from daemon.core.config import Config, load_config  # noqa: E402
from daemon.core.logs import configure_logging, get_logger  # noqa: E402
from daemon.core.textid import pair_hash  # noqa: E402
from daemon.runtime.wiring import open_searcher  # noqa: E402
from daemon.search.searcher import Searcher  # noqa: E402
from daemon.store import corpus as q  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "retrieval"
SETS = ("pandas_ta", "stockstats")
MODES = ("baseline", "dense", "lexical", "hybrid")
AGENT = "librarian"
K = 10
THRESHOLD = 0.5  # the seed's distance threshold ([search] max_distance)


@dataclass(frozen=True)
class RetrievalSet:
    """A knowledge base (pairs) and queries whose ``key`` names the relevant pairs."""

    name: str
    pairs: list[dict[str, Any]]
    queries: list[dict[str, Any]]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def load_set(name: str, data: Path = DATA) -> RetrievalSet:
    """One committed set."""
    folder = data / name
    return RetrievalSet(name, _jsonl(folder / "pairs.jsonl"), _jsonl(folder / "queries.jsonl"))


def settings(root: Path) -> Config:
    """The root's config: no settle window (the file is complete), no search socket."""
    return load_config(
        root,
        overrides={
            "watch": {"settle_seconds": 0.0, "poll_seconds": 0.01},
            "search": {"serve": False},
        },
    )


def ingest(kb: RetrievalSet, root: Path) -> Config:
    """Deliver the set as one agent's Q&A file and run the real pipeline once over it."""
    from daemon.runtime.service import Service

    outbox = root / "outbox" / AGENT
    outbox.mkdir(parents=True, exist_ok=True)
    pairs = [{k: p[k] for k in ("id", "question", "answer", "indicator", "type")} for p in kb.pairs]
    (outbox / f"{kb.name}_qa_pairs.json").write_text(
        json.dumps({"qa_pairs": pairs}, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    config = settings(root)
    service = Service(config)
    service.start(watch=False)
    try:
        service.run_once()
    finally:
        service.stop()
    return config


def prepared(kb: RetrievalSet, root: Path) -> Config:
    """The set's root, processed: ingested now, or as a kept root left it (``--work``)."""
    if (root / "state" / "inboxd.db").exists():
        return settings(root)
    return ingest(kb, root)


@dataclass
class Judge:
    """Whether a stored pair is relevant to a query: its key, or a duplicate's key."""

    keys_of: dict[int, set[str]]  # pair id -> the keys it stands for (itself + duplicates)

    @classmethod
    def of(cls, searcher: Searcher, kb: RetrievalSet) -> Judge:
        by_hash = {pair_hash(p["question"], p["answer"]): p["key"] for p in kb.pairs}
        db = searcher.store.db
        keys_of: dict[int, set[str]] = {}
        for pid, question, answer, _, _ in q.all_pairs_for_evaluation(db):
            key = by_hash.get(pair_hash(question, answer))
            keys_of[pid] = {key} if key else set()
        for pid, kept in q.duplicate_of_map(db).items():
            keys_of.setdefault(kept, set()).update(keys_of.get(pid, set()))
        return cls(keys_of)

    def relevant(self, pair_id: int, key: str) -> bool:
        return key in self.keys_of.get(pair_id, set())


@dataclass
class Ranked:
    """One query's top results: relevance and cosine distance of each, best first."""

    relevant: list[bool]
    distances: list[float | None]
    seconds: float = 0.0


def summarise(ranked: Sequence[Ranked], threshold: float = THRESHOLD) -> dict[str, float]:
    """hit@1, hit@5, MRR@10, top hit under the threshold, any answer; latency p50/p99."""
    n = len(ranked)

    def share(flags: Iterable[bool]) -> float:
        return round(sum(flags) / n, 4)

    mrr = sum(
        next((1.0 / (i + 1) for i, rel in enumerate(r.relevant[:K]) if rel), 0.0) for r in ranked
    )
    latencies = sorted(r.seconds * 1000 for r in ranked)
    return {
        "queries": n,
        "hit_at_1": share(bool(r.relevant[:1] and r.relevant[0]) for r in ranked),
        "hit_at_5": share(any(r.relevant[:5]) for r in ranked),
        "mrr_at_10": round(mrr / n, 4),
        "top_within_threshold": share(
            bool(r.distances) and r.distances[0] is not None and r.distances[0] < threshold
            for r in ranked
        ),
        "answered": share(bool(r.relevant) for r in ranked),
        "p50_ms": round(statistics.median(latencies), 2) if latencies else 0.0,
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))], 2) if latencies else 0.0,
    }


def search_mode(
    searcher: Searcher,
    judge: Judge,
    queries: Sequence[dict[str, Any]],
    mode: str,
    max_distance: float | None,
) -> list[Ranked]:
    """Every query through ``Searcher.search``, timed (query embedding included)."""
    found = []
    for query in queries:
        started = time.perf_counter()
        hits = searcher.search(query["query"], k=K, mode=mode, max_distance=max_distance)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        found.append(
            Ranked(
                [judge.relevant(h.pair_id, query["key"]) for h in hits],
                [h.distance for h in hits],
                seconds,
            )
        )
    return found


def baseline_encoder(name: str, searcher: Searcher) -> Callable[[list[str]], Any]:
    """Texts -> unit vectors for the bare baseline: the ONNX export the searcher loaded
    (``onnx``), or sentence-transformers on torch (``st``)."""
    if name == "st":
        from benchmarks.reference import sentence_transformer

        model = sentence_transformer()
        return lambda texts: model.encode(
            texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    return searcher.embedder.embed_documents


def baseline(
    kb: RetrievalSet, queries: Sequence[dict[str, Any]], encode: Callable[[list[str]], Any]
) -> list[Ranked]:
    """Bare all-MiniLM-L6-v2 over ``question + " " + answer``, exact cosine, no cut-off:
    the ten-line baseline. Queries are encoded in one batch (its quality, not latency)."""
    docs = encode([p["question"] + " " + p["answer"] for p in kb.pairs])
    keys = [p["key"] for p in kb.pairs]
    started = time.perf_counter()
    vectors = encode([query["query"] for query in queries])
    found = []
    for query, vector in zip(queries, vectors, strict=True):
        sims = docs @ vector
        top = np.argsort(-sims, kind="stable")[:K]
        found.append(
            Ranked(
                [keys[i] == query["key"] for i in top],
                [round(1.0 - float(sims[i]), 4) for i in top],
            )
        )
    each = (time.perf_counter() - started) / max(1, len(found))
    for ranked in found:
        ranked.seconds = each
    return found


def cut_of(mode: str) -> float | None:
    """The cut-off ``inboxd search`` applies by default in ``mode``."""
    from daemon.search.searcher import default_max_distance

    return default_max_distance(mode, THRESHOLD)  # type: ignore[arg-type]


def by_kind(ranked: Sequence[Ranked], queries: Sequence[dict[str, Any]]) -> dict[str, float]:
    """hit@1 per kind of query."""
    return {
        kind: summarise([r for r, q_ in zip(ranked, queries, strict=True) if q_["kind"] == kind])[
            "hit_at_1"
        ]
        for kind in sorted({query["kind"] for query in queries})
    }


def evaluate_set(
    kb: RetrievalSet,
    root: Path,
    modes: Sequence[str] = MODES,
    *,
    encoder: str = "onnx",
    misses: str | None = None,
) -> dict[str, Any]:
    """Ingest ``kb`` into ``root`` (unless already there) and score every mode."""
    started = time.monotonic()
    config = prepared(kb, root)
    ingest_s = time.monotonic() - started
    searcher = open_searcher(config, get_logger())
    try:
        judge = Judge.of(searcher, kb)
        searcher.embedder.embed_query("warm-up")
        results: dict[str, Any] = {}
        missed: list[dict[str, Any]] = []
        for mode in modes:
            if mode == "baseline":
                ranked = baseline(kb, kb.queries, baseline_encoder(encoder, searcher))
            else:
                ranked = search_mode(searcher, judge, kb.queries, mode, cut_of(mode))
            results[mode] = summarise(ranked)
            results[mode]["hit_at_1_by_kind"] = by_kind(ranked, kb.queries)
            if mode == misses:
                missed = [
                    query
                    for query, r in zip(kb.queries, ranked, strict=True)
                    if not (r.relevant[:1] and r.relevant[0])
                ]
        report = {
            "set": kb.name,
            "pairs": len(kb.pairs),
            "indexed": len(searcher.index),
            "queries": len(kb.queries),
            "ingest_seconds": round(ingest_s, 1),
            "modes": results,
        }
        if misses is not None:
            report["misses"] = missed
        return report
    finally:
        searcher.store.close()


def table(reports: Sequence[dict[str, Any]]) -> str:
    """One Markdown table: a row per set and mode."""
    lines = [
        "| set | mode | hit@1 | hit@5 | MRR@10 | top hit < 0.5 | answered | p50 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        for mode, m in report["modes"].items():
            lines.append(
                f"| {report['set']} ({report['pairs']} pairs, {report['queries']} q) | {mode} |"
                f" {m['hit_at_1']:.3f} | {m['hit_at_5']:.3f} | {m['mrr_at_10']:.3f} |"
                f" {'-' if mode == 'lexical' else format(m['top_within_threshold'], '.3f')} |"
                f" {m['answered']:.3f} | {m['p50_ms']:.1f} |"
            )
    kinds = sorted({k for r in reports for m in r["modes"].values() for k in m["hit_at_1_by_kind"]})
    lines += ["", "hit@1 by kind of query:", "", "| set | mode | " + " | ".join(kinds) + " |"]
    lines.append("|---|---|" + "---:|" * len(kinds))
    for report in reports:
        for mode, m in report["modes"].items():
            values = " | ".join(f"{m['hit_at_1_by_kind'].get(k, 0.0):.3f}" for k in kinds)
            lines.append(f"| {report['set']} | {mode} | {values} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--set", action="append", choices=SETS, help="default: every set")
    parser.add_argument("--mode", action="append", choices=MODES, help="default: every mode")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--baseline-encoder",
        choices=("onnx", "st"),
        default="onnx",
        help="the baseline's MiniLM: inboxd's ONNX export or sentence-transformers on torch",
    )
    parser.add_argument(
        "--levers", action="store_true", help="also score each ranking lever alone (offline)"
    )
    parser.add_argument("--misses", choices=MODES[1:], help="list the queries this mode misses")
    parser.add_argument(
        "--work", type=Path, help="keep each set's root under this folder and reuse it"
    )
    args = parser.parse_args(argv)
    configure_logging("console", "warning")
    reports = []
    with tempfile.TemporaryDirectory(prefix="inboxd-retrieval-") as tmp:
        work = args.work or Path(tmp)
        for name in args.set or SETS:
            kb = load_set(name)
            reports.append(
                evaluate_set(
                    kb,
                    work / name,
                    args.mode or MODES,
                    encoder=args.baseline_encoder,
                    misses=args.misses,
                )
            )
        print(json.dumps(reports, indent=1) if args.json else table(reports))
        if args.misses and not args.json:
            for report in reports:
                print(f"\n{report['set']}: {len(report['misses'])} misses of {args.misses}")
                for query in report["misses"]:
                    print(f"  [{query['kind']}] {query['query']!r} -> {query['key']}")
        if args.levers:
            from benchmarks.retrieval_levers import levers

            for name in args.set or SETS:
                kb = load_set(name)
                print(f"\n{name}: each lever alone\n\n| variant | hit@1 | hit@5 | MRR@10 |")
                print("|---|---:|---:|---:|")
                for variant, m in levers(kb, prepared(kb, work / name)).items():
                    print(
                        f"| {variant} | {m['hit_at_1']:.3f} | {m['hit_at_5']:.3f} |"
                        f" {m['mrr_at_10']:.3f} |"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
