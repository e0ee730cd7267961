"""The local embedder on ONNX Runtime against sentence-transformers on torch (the path
inboxd ran before), measured in one run:

1. agreement on corpus texts: cosine per text, top-10 neighbours among the texts and
   for search queries, near-duplicate decisions at the de-duplication threshold; for
   the fp32 export and for the int8 variant;
2. throughput: the same texts in interleaved rounds, each engine in turn (rotating
   order, so all see the same load), as texts/s and the ratio to torch;
3. a cold ``inboxd search`` with no daemon running (wall time p50 and peak RSS of the
   process), interleaved with a cold process that loads the model the old way
   (import torch and sentence-transformers, load, embed the query).

    .venv/bin/python benchmarks/bench_onnx.py                 # all three, ~5 min
    .venv/bin/python benchmarks/bench_onnx.py --only cold --searches 20
    .venv/bin/python benchmarks/bench_onnx.py --only cold --baseline /tmp/inboxd-main

Needs the `bench` extra (sentence-transformers); not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `benchmarks` and `daemon` importable
    sys.path.insert(0, str(REPO))

from benchmarks import corpus  # noqa: E402
from benchmarks.bench_refinement import (  # noqa: E402
    INBOXD,
    loadavg,
    machine,
    percentile,
    quiet_logging,
    save,
    table,
    verdict,
)
from benchmarks.reference import sentence_transformer  # noqa: E402
from daemon.core.config_sections import EmbeddingsConfig  # noqa: E402

DEFAULT_WORK = Path("/tmp/inboxd-bench-onnx")
BATCH = EmbeddingsConfig().batch_size
THRESHOLD = 0.92  # [dedup] threshold
TARGETS = {"min_cosine": 0.9999, "throughput_ratio": 1.0, "cold_search_p50_s": 1.0}
# Children import this checkout's `daemon` and `benchmarks`, offline.
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
}

Encode = Callable[[list[str]], np.ndarray]


def engines() -> dict[str, Encode]:
    """Each way of embedding a list of texts, loaded and warm."""
    from daemon.providers.embedders.local import LocalEmbedder

    st = sentence_transformer()
    fp32, int8 = LocalEmbedder(batch_size=BATCH), LocalEmbedder(batch_size=BATCH, precision="int8")
    found: dict[str, Encode] = {
        "torch": lambda texts: st.encode(
            texts, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False
        ),
        "onnx-fp32": fp32.embed_documents,
        "onnx-int8": int8.embed_documents,
    }
    for encode in found.values():
        encode(["warm-up", "a second, longer warm-up text"])
    return found


def texts_and_pairs(count: int, seed: int) -> tuple[list[str], list[tuple[int, int]]]:
    """``count`` corpus texts (questions and answers) and the pairs' (q, a) positions."""
    pairs = corpus.generate(count // 2, files=max(1, count // 160), seed=seed)
    texts: list[str] = []
    positions = []
    for pair in pairs:
        positions.append((len(texts), len(texts) + 1))
        texts += [pair["question"], pair["answer"]]
    return texts, positions


def top_k(queries: np.ndarray, docs: np.ndarray, k: int, skip_self: bool) -> list[list[int]]:
    similarity = queries @ docs.T
    if skip_self:
        np.fill_diagonal(similarity, -np.inf)
    return [list(row) for row in np.argsort(-similarity, axis=1, kind="stable")[:, :k]]


def near_duplicates(pair_vectors: np.ndarray) -> set[tuple[int, int]]:
    similarity = np.triu(pair_vectors @ pair_vectors.T, k=1)
    return {(int(i), int(j)) for i, j in zip(*np.nonzero(similarity >= THRESHOLD), strict=True)}


def pair_vectors(vectors: np.ndarray, positions: list[tuple[int, int]]) -> np.ndarray:
    """What inboxd de-duplicates on: the normalised sum of question and answer."""
    summed = np.stack([vectors[q] + vectors[a] for q, a in positions])
    normalised: np.ndarray = summed / np.linalg.norm(summed, axis=1, keepdims=True)
    return normalised


def bench_agreement(args: argparse.Namespace, encode: dict[str, Encode]) -> dict[str, Any]:
    """1. Agreement of each ONNX variant with torch."""
    texts, positions = texts_and_pairs(args.texts, args.seed)
    queries = corpus.queries(args.queries, seed=args.seed + 1)
    vectors = {name: fn(texts) for name, fn in encode.items()}
    query_vectors = {name: fn(queries) for name, fn in encode.items()}
    reference, ref_queries = vectors["torch"], query_vectors["torch"]
    ref_neighbours = top_k(reference, reference, 10, skip_self=True)
    ref_hits = top_k(ref_queries, reference, 10, skip_self=False)
    ref_dups = near_duplicates(pair_vectors(reference, positions))
    rows, result = [], {}
    for name in ("onnx-fp32", "onnx-int8"):
        cosines = np.sum(vectors[name] * reference, axis=1)
        neighbours = top_k(vectors[name], vectors[name], 10, skip_self=True)
        hits = top_k(query_vectors[name], vectors[name], 10, skip_self=False)
        dups = near_duplicates(pair_vectors(vectors[name], positions))
        stats = {
            "min_cosine": float(cosines.min()),
            "mean_cosine": float(cosines.mean()),
            "texts_identical_top10": sum(
                a == b for a, b in zip(neighbours, ref_neighbours, strict=True)
            ),
            "queries_identical_top10": sum(a == b for a, b in zip(hits, ref_hits, strict=True)),
            "query_recall_at_10": statistics.fmean(
                len(set(a) & set(b)) / 10 for a, b in zip(hits, ref_hits, strict=True)
            ),
            "near_duplicates_torch": len(ref_dups),
            "near_duplicate_flips": len(ref_dups ^ dups),
        }
        result[name] = stats
        rows.append(
            [
                name,
                stats["min_cosine"],
                stats["mean_cosine"],
                f"{stats['texts_identical_top10']}/{len(texts)}",
                f"{stats['queries_identical_top10']}/{len(queries)}",
                stats["query_recall_at_10"],
                f"{stats['near_duplicate_flips']} of {len(ref_dups)}",
            ]
        )
    print(
        table(
            [
                "vs torch",
                "min cosine",
                "mean cosine",
                "texts: same top-10",
                "queries: same top-10",
                "query recall@10",
                f"dup flips @{THRESHOLD}",
            ],
            rows,
        )
    )
    fp32 = result["onnx-fp32"]
    result["pass"] = (
        verdict("fp32 min cosine per text", fp32["min_cosine"], 0.9999, at_most=False)
        and fp32["texts_identical_top10"] == len(texts)
        and fp32["queries_identical_top10"] == len(queries)
    )
    print(f"{'PASS' if result['pass'] else 'MISS'}  fp32: identical top-10 everywhere")
    return {"texts": len(texts), "queries": len(queries), **result}


def bench_throughput(args: argparse.Namespace, encode: dict[str, Encode]) -> dict[str, Any]:
    """2. texts/s of each engine on the same chunks, interleaved."""
    texts, _ = texts_and_pairs(args.texts, args.seed + 2)
    names = list(encode)
    per_round = max(1, len(texts) // args.rounds)
    seconds = dict.fromkeys(names, 0.0)
    rows = []
    for r, start in enumerate(range(0, len(texts), per_round)):
        chunk = texts[start : start + per_round]
        order = names[r % len(names) :] + names[: r % len(names)]
        took = {}
        for name in order:
            t = time.perf_counter()
            encode[name](chunk)
            took[name] = time.perf_counter() - t
            seconds[name] += took[name]
        rows.append(
            [
                r + 1,
                len(chunk),
                *(len(chunk) / took[n] for n in names),
                took["torch"] / took["onnx-fp32"],
                took["torch"] / took["onnx-int8"],
                loadavg(),
            ]
        )
    total = {name: len(texts) / s for name, s in seconds.items()}
    rows.append(
        [
            "all",
            len(texts),
            *(total[n] for n in names),
            seconds["torch"] / seconds["onnx-fp32"],
            seconds["torch"] / seconds["onnx-int8"],
            "",
        ]
    )
    print(
        table(
            ["round", "texts", *(f"{n}/s" for n in names), "fp32/torch", "int8/torch", "load"],
            rows,
        )
    )
    ratio = seconds["torch"] / seconds["onnx-fp32"]
    ok = verdict("fp32 throughput / torch's", ratio, TARGETS["throughput_ratio"], at_most=False)
    return {
        "texts": len(texts),
        "batch_size": BATCH,
        "texts_per_s": total,
        "fp32_ratio": ratio,
        "int8_ratio": seconds["torch"] / seconds["onnx-int8"],
        "rounds": rows,
        "pass": ok,
    }


# Measures one command from a small process: a child forked from this benchmark (torch
# loaded, ~1 GB) would start with, and report, the benchmark's resident pages.
_MEASURE = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
lines = done.stdout.splitlines() or [""]
print(json.dumps({"rc": done.returncode, "wall": wall, "rss_mb": rss, "last_line": lines[-1],
                  "stderr": done.stderr[-2000:]}))
"""


def run_measured(argv: Sequence[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``argv`` to completion (in ``env``, default ``ENV``): ``wall`` seconds, peak
    ``rss_mb`` and the ``last_line`` it printed."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *argv],
        capture_output=True,
        text=True,
        env=env or ENV,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    if result["rc"] != 0:
        raise RuntimeError(f"{argv[:4]} exited {result['rc']}: {result['stderr']}")
    return result


def timed(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``argv`` to completion: its wall seconds and peak RSS in MB."""
    result = run_measured(argv, env)
    return float(result["wall"]), float(result["rss_mb"])


TORCH_QUERY = """
import sys
from benchmarks.reference import sentence_transformer
sentence_transformer().encode([sys.argv[1]], normalize_embeddings=True)
"""


def searchable_root(args: argparse.Namespace) -> Path:
    """A root with ``--root-pairs`` pairs embedded and indexed (built once)."""
    root = args.work / f"root-{args.root_pairs}"
    if not (root / "state" / "inboxd.db").exists():
        corpus.write_corpus(root, args.root_pairs, files=max(1, args.root_pairs // 80))
        print(f"building {root} ({args.root_pairs} pairs) ...", flush=True)
        timed([str(INBOXD), "--root", str(root), "--log-level", "error", "run", "--once"])
    return root


def bench_cold(args: argparse.Namespace) -> dict[str, Any]:
    """3. Cold ``inboxd search`` processes (no daemon) beside cold torch processes."""
    root = searchable_root(args)
    assert not (root / "state" / "search.sock").exists(), "a daemon serves this root"
    queries = corpus.queries(args.searches, seed=args.seed + 3)
    baseline = f"inboxd search ({args.baseline})" if args.baseline else None
    runs: dict[str, list[tuple[float, float]]] = {"inboxd search": [], "torch: load + embed": []}
    if baseline:
        runs[baseline] = []
    for n, text in enumerate(queries):
        search = [str(INBOXD), "--root", str(root), "search", text, "--json"]
        jobs = {
            "inboxd search": search,
            "torch: load + embed": [sys.executable, "-c", TORCH_QUERY, text],
        }
        if baseline:
            jobs[baseline] = search
        for name in list(jobs)[n % len(jobs) :] + list(jobs)[: n % len(jobs)]:
            # The baseline is the same command with another checkout's `daemon` first.
            env = {**ENV, "PYTHONPATH": str(args.baseline)} if name == baseline else None
            wall, rss = timed(jobs[name], env)
            runs[name].append((wall, rss))
    rows = []
    for name, values in runs.items():
        walls = [w for w, _ in values]
        rows.append(
            [
                name,
                len(values),
                percentile(walls, 50),
                percentile(walls, 90),
                max(r for _, r in values),
            ]
        )
    print(table(["cold process", "runs", "wall p50 s", "wall p90 s", "peak RSS MB"], rows))
    p50 = percentile([w for w, _ in runs["inboxd search"]], 50)
    ok = verdict("cold inboxd search p50 (s)", p50, TARGETS["cold_search_p50_s"], at_most=True)
    return {
        "root_pairs": args.root_pairs,
        "searches": args.searches,
        "rows": rows,
        "pass": ok,
    }


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["agreement", "throughput", "cold"], action="append")
    parser.add_argument("--texts", type=int, default=1000, help="corpus texts (default 1000)")
    parser.add_argument("--queries", type=int, default=200, help="search queries (agreement)")
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds (default 5)")
    parser.add_argument("--searches", type=int, default=10, help="cold searches each way")
    parser.add_argument("--root-pairs", type=int, default=1000, help="pairs in the cold root")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also time cold searches by the checkout in this folder (e.g. `git archive`"
        " of an older commit), interleaved with this one's: before/after under one load",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    quiet_logging()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine().items()))
    print(f"load average: {loadavg()}")
    chosen = args.only or ["agreement", "throughput", "cold"]
    results: dict[str, Any] = {}
    encode = engines() if {"agreement", "throughput"} & set(chosen) else {}
    for name in chosen:
        print(f"\n== {name} ==")
        if name == "cold":
            results[name] = bench_cold(args)
        else:
            bench = bench_agreement if name == "agreement" else bench_throughput
            results[name] = bench(args, encode)
    results["load_after"] = loadavg()
    save(args, "onnx", results)
    return 0 if all(r.get("pass") for r in results.values() if isinstance(r, dict)) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
