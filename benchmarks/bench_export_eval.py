"""On-demand benchmark of the RAG hand-off on the 17,000-pair refined root: the export
(`inboxd export`) and the evaluation of 500 queries (`inboxd eval --limit 500`), each as
a real process: wall time and peak RSS, and proof that the evaluation reused the stored
embeddings (the embeddings table is unchanged and only the queries were embedded).

The refined root is the one ``bench_refinement.py embed`` builds and caches; it is
copied first, so the export and the reports land in a scratch copy.

    .venv/bin/python benchmarks/bench_export_eval.py
    .venv/bin/python benchmarks/bench_export_eval.py --source /path/to/refined/root --queries 500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

INBOXD = Path(sys.executable).parent / "inboxd"
DEFAULT_SOURCE = Path("/tmp/inboxd-bench-refinement/root-17000p-215f-s7")
DEFAULT_WORK = Path("/tmp/inboxd-bench-export-eval")
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("INBOXD_")},
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def _scalar(db: Path, sql: str) -> Any:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def _check_refined(root: Path) -> dict[str, int]:
    db = root / "state" / "inboxd.db"
    if not db.exists():
        sys.exit(f"{root}: no database; build it with benchmarks/bench_refinement.py embed")
    waiting = _scalar(db, "SELECT count(*) FROM batches WHERE state != 'indexed'")
    if waiting:
        sys.exit(f"{root}: {waiting} batch(es) not indexed yet; let bench_refinement finish")
    return {
        "pairs": _scalar(db, "SELECT count(*) FROM pairs"),
        "embeddings": _scalar(db, "SELECT count(*) FROM embeddings"),
        "duplicates": _scalar(db, "SELECT count(*) FROM duplicates"),
    }


def _run(argv: list[str]) -> tuple[float, int, str]:
    """Run one process; returns (wall seconds, peak RSS in MB, stdout)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    out, err = proc.communicate()
    wall = time.monotonic() - started
    # ru_maxrss of the children waited for so far: each run is measured in a fresh
    # benchmark process stage, so take the largest seen (it only grows).
    peak_kb = _children_peak_kb()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    return wall, peak_kb // 1024, out.decode()


def _children_peak_kb() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument(
        "--step", choices=["export", "eval"], help="internal: run one step and report"
    )
    args = parser.parse_args()
    if args.step:  # a child stage: RUSAGE_CHILDREN then covers exactly one inboxd process
        _stage(args)
        return
    counts = _check_refined(args.source)
    root = args.work / "root"
    if root.exists():
        shutil.rmtree(root)
    copy_started = time.monotonic()
    shutil.copytree(args.source, root, ignore=shutil.ignore_patterns("inboxd.lock", "export*"))
    print(f"copied {args.source} ({counts}) in {time.monotonic() - copy_started:.1f}s")
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
        },
        "corpus": counts,
    }
    for step in ("export", "export", "eval"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--work",
                str(args.work),
                "--queries",
                str(args.queries),
                "--step",
                step,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        key = step if step not in results else f"{step}_again"
        results[key] = json.loads(out)
    results["embeddings_after"] = _scalar(
        root / "state" / "inboxd.db", "SELECT count(*) FROM embeddings"
    )
    results["machine"]["load_average_after"] = os.getloadavg()
    (args.work / "results").mkdir(parents=True, exist_ok=True)
    path = args.work / "results" / "export-eval.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    _print(results, args.queries)
    print(f"saved {path}")


def _stage(args: argparse.Namespace) -> None:
    root = args.work / "root"
    if args.step == "export":
        wall, peak, out = _run([str(INBOXD), "--root", str(root), "export", "--json"])
        done = json.loads(out)
        manifest = json.loads((Path(done["version"]) / "manifest.json").read_text())
        sizes = {name: entry["bytes"] for name, entry in manifest["files"].items()}
        print(
            json.dumps(
                {
                    "wall_s": round(wall, 2),
                    "peak_rss_mb": peak,
                    "in_process_ms": done["duration_ms"],
                    "pairs": done["pairs"],
                    "bytes": sizes,
                }
            )
        )
        return
    before = _scalar(root / "state" / "inboxd.db", "SELECT count(*) FROM embeddings")
    wall, peak, out = _run(
        [str(INBOXD), "--root", str(root), "eval", "--limit", str(args.queries), "--json"]
    )
    report = json.loads(out)
    after = _scalar(root / "state" / "inboxd.db", "SELECT count(*) FROM embeddings")
    print(
        json.dumps(
            {
                "wall_s": round(wall, 2),
                "peak_rss_mb": peak,
                "in_process_ms": report["duration_ms"],
                "queries": report["queries"]["count"],
                "embedded_texts": report["embedded_texts"],
                "embeddings_before": before,
                "embeddings_after": after,
                "summary": report["summary"],
                "refined": report["refined"],
                "baseline": report["baseline"],
                "improved": report["improved"],
                "significantly_improved": report["significantly_improved"],
            }
        )
    )


def _print(results: dict[str, Any], queries: int) -> None:
    export, again, ev = results["export"], results["export_again"], results["eval"]
    print("\n| measurement | wall | peak RSS | in-process |")
    print("|---|---|---|---|")
    print(
        f"| export {export['pairs']} pairs (first) | {export['wall_s']} s |"
        f" {export['peak_rss_mb']} MB | {export['in_process_ms']} ms |"
    )
    print(
        f"| export again (swap, prune) | {again['wall_s']} s | {again['peak_rss_mb']} MB |"
        f" {again['in_process_ms']} ms |"
    )
    print(
        f"| eval {ev['queries']} queries, both sides | {ev['wall_s']} s |"
        f" {ev['peak_rss_mb']} MB | {ev['in_process_ms']} ms |"
    )
    print(
        f"\nembedded texts: {ev['embedded_texts']} (= the {queries} queries); embeddings table"
        f" {ev['embeddings_before']} -> {ev['embeddings_after']} rows"
    )
    print(ev["summary"])
    print("export sizes:", export["bytes"])


if __name__ == "__main__":
    main()
