"""On-demand benchmark of what issue 15 adds after each indexed batch and corpus run, on
the 17,000-pair corpus of ``benchmarks/corpus.py``: the agent's quality feedback (one
report per file, the index) and the Chroma sync (``[rag] chroma_sync``).

The model is not what is measured, so the embeddings table is filled first with
unit vectors (an answer's close to its question's) under the local model's id: the
embed stage then finds every text cached and never loads the model, and every other
stage runs as in the daemon, in process (``Service.run_once``). Each hook is timed per
batch; then one corpus run (all reports rewritten, a sync with nothing to change), and
``export --to chroma`` into an empty folder (17,000 upserts).

    .venv/bin/python benchmarks/bench_feedback_chroma.py
    .venv/bin/python benchmarks/bench_feedback_chroma.py --pairs 4000 --files 50
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import corpus
from daemon.core.config import load_config
from daemon.core.textid import text_hash
from daemon.providers.embedders import normalise_rows
from daemon.runtime.service import Service
from daemon.stages.corpus_run import run_corpus
from daemon.states import BatchState
from daemon.store import Store
from daemon.store import corpus as q

MODEL_ID = "local/all-MiniLM-L6-v2"


def _fill_embeddings(root: Path, seed: int) -> int:
    """A cached vector for every question and answer of the corpus files."""
    rng = np.random.default_rng(seed)
    vectors: dict[str, Any] = {}
    for path in sorted((root / "outbox").rglob("*.json")):
        for pair in json.loads(path.read_text())["qa_pairs"]:
            question = rng.standard_normal(384).astype(np.float32)
            answer = question + 0.8 * rng.standard_normal(384).astype(np.float32)
            rows = normalise_rows(np.stack([question, answer]))
            vectors[text_hash(pair["question"])] = rows[0]
            vectors[text_hash(pair["answer"])] = rows[1]
    store = Store(root / "state" / "inboxd.db")
    store.migrate()
    with store.transaction() as db:
        q.save_embeddings(db, MODEL_ID, vectors, time.time())
    store.close()
    return len(vectors)


def _name(hook: Any) -> str:
    """A hook's module, through functools.partial."""
    return str(getattr(getattr(hook, "func", hook), "__module__", repr(hook)))


def _timed(hook: Callable[..., Any], into: list[float]) -> Callable[..., Any]:
    """``hook`` timed each time it has work: a corpus run, a batch moved to indexed (the
    per-batch hooks do nothing on other moves), an idle tick that did something."""

    def run(*args: Any) -> Any:
        started = time.perf_counter()
        result = hook(*args)
        moved = args[1] if len(args) == 3 else None
        if (moved is None or moved.state is BatchState.INDEXED) and result is not False:
            into.append(time.perf_counter() - started)
        return result

    run.__qualname__ = hook.__qualname__
    return run


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "last_ms": round(values[-1] * 1000, 1),
        "total_s": round(sum(values), 2),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=17_000)
    parser.add_argument("--files", type=int, default=215)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/inboxd-bench-feedback-chroma"))
    args = parser.parse_args(argv)
    shutil.rmtree(args.work, ignore_errors=True)
    root = args.work / "root"
    for name in ("inbox", "outbox", "state"):
        (root / name).mkdir(parents=True)
    corpus.write_corpus(root, args.pairs, files=args.files, seed=args.seed)
    filled = _fill_embeddings(root, args.seed)

    config = load_config(
        root,
        overrides={
            "watch": {"settle_seconds": 0.0, "poll_seconds": 0.01},
            "rag": {"chroma_sync": True, "auto_export": False},
        },
    )
    service = Service(config)
    pipeline = service.start(watch=False)
    worker = service.worker_services()
    timings: dict[str, list[float]] = {}
    for key in ("after_move", "after_corpus_run", "idle_work"):
        hooks = getattr(worker.hooks, key)
        hooks[:] = [_timed(hook, timings.setdefault(f"{key}:{_name(hook)}", [])) for hook in hooks]
    started = time.perf_counter()
    service.run_once()
    pipeline_s = time.perf_counter() - started
    per_batch = {k: _stats(v) for k, v in timings.items()}
    for values in timings.values():
        values.clear()
    started = time.perf_counter()
    run_corpus(worker, time.time())
    corpus_s = time.perf_counter() - started
    corpus_run = {k: round(sum(v), 2) for k, v in timings.items() if v}
    # Steady state: one more file arrives alone and is synced right after it is indexed.
    for values in timings.values():
        values.clear()
    extra = corpus.indicators(args.files + 1)[-1]
    extra_pairs = corpus.pairs_for(extra, 80, seed=args.seed, tag="alone")
    corpus.drop_atomically(corpus.file_path(root, extra), corpus.envelope(extra, extra_pairs))
    _fill_embeddings(root, args.seed + 1)
    pipeline.rescan(time.time())
    service.run_once()
    one_file = {k: _stats(v) for k, v in timings.items() if v}
    embedded = q.embedding_count(pipeline.ctx.store.db)
    service.stop()

    from daemon.core.logs import get_logger
    from daemon.rag.chroma import run_chroma_export
    from daemon.runtime.wiring import reading

    started, cpu = time.perf_counter(), time.process_time()
    with reading(config, get_logger()) as services:
        fresh = run_chroma_export(services, args.work / "fresh-chroma")
    fresh_s, fresh_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    with reading(config, get_logger()) as services:
        again = run_chroma_export(services, args.work / "fresh-chroma")
    again_s = time.perf_counter() - started
    feedback = sorted((root / "inbox").rglob("*"))
    result = {
        "pairs": args.pairs,
        "files": args.files,
        "vectors_prefilled": filled,
        "embeddings_after": embedded,
        "pipeline_s": round(pipeline_s, 1),
        "per_batch_hooks": per_batch,
        "corpus_run_s": round(corpus_s, 2),
        "corpus_run_hooks_s": corpus_run,
        "one_more_file_hooks": one_file,
        "export_to_empty_chroma": {
            **fresh.as_dict(),
            "wall_s": round(fresh_s, 2),
            "cpu_s": round(fresh_cpu, 2),
        },
        "export_again_nothing_changed": {**again.as_dict(), "wall_s": round(again_s, 2)},
        "feedback_files": sum(1 for p in feedback if p.is_file()),
        "feedback_bytes": sum(p.stat().st_size for p in feedback if p.is_file()),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
