"""On-demand benchmarks of inboxd's refinement path: embedding, drop-to-search latency,
search latency and recall, restart, and corpus-wide de-duplication at scale.

Each benchmark prints a small table and PASS/MISS against its target, and saves its
numbers as JSON under ``<work>/results/``. The 17k-pair root is built once (by
``embed``, or by the first benchmark that needs it) and reused; ``--rebuild`` forces it.

    .venv/bin/python benchmarks/bench_refinement.py --help
    .venv/bin/python benchmarks/bench_refinement.py embed               # 17,000 pairs, ~10 min
    .venv/bin/python benchmarks/bench_refinement.py embed --pairs 2000  # a quicker run
    .venv/bin/python benchmarks/bench_refinement.py embed --batch-sizes 16,64  # two pipelines
    .venv/bin/python benchmarks/bench_refinement.py latency [--batch-size 16]
    .venv/bin/python benchmarks/bench_refinement.py search
    .venv/bin/python benchmarks/bench_refinement.py restart
    .venv/bin/python benchmarks/bench_refinement.py dedup --sizes 17000,100000,1000000
    .venv/bin/python benchmarks/bench_refinement.py all                 # ~45 min on 2 cores

These are not tests: they take minutes, load the real model and need a quiet machine
(the load average is printed with every result).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import itertools
import json
import math
import os
import platform
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `benchmarks` and `daemon` importable
    sys.path.insert(0, str(REPO))

from benchmarks import corpus  # noqa: E402
from daemon.core.config_sections import EmbeddingsConfig  # noqa: E402

INBOXD = Path(sys.executable).parent / "inboxd"
DEFAULT_WORK = Path("/tmp/inboxd-bench-refinement")
MODEL = "all-MiniLM-L6-v2"
DIM = 384
CONFIG_BATCH_SIZE = EmbeddingsConfig().batch_size

TARGETS = {
    "embed_ratio": 0.9,  # pipeline embed throughput / bare encode throughput, at least
    "drop_to_search_p50_s": 2.0,  # at most
    "search_p50_ms": 25.0,  # at most, dense and hybrid
    "recall_at_10": 0.98,  # at least
    "restart_ready_s": 3.0,  # at most
    "dedup_nlogn_spread": 3.0,  # max/min of time/(n log n) over the sizes, at most
}


# -- reporting -----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """The facts a number needs next to it."""

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gb = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = int(line.split()[1]) / 1024 / 1024
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(ram_gb, 1),
        "python": platform.python_version(),
        "torch": version("torch"),
        "sentence_transformers": version("sentence-transformers"),
        "onnxruntime": version("onnxruntime"),
        "tokenizers": version("tokenizers"),
        "hnswlib": version("hnswlib"),
        "numpy": version("numpy"),
        "os": platform.platform(),
    }


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    numeric = [any(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            c.rjust(w) if numeric[i] else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0 or abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict(label: str, value: float, target: float, *, at_most: bool) -> bool:
    ok = value <= target if at_most else value >= target
    sign = "<=" if at_most else ">="
    print(f"{'PASS' if ok else 'MISS'}  {label}: {_fmt(value)} (target {sign} {_fmt(target)})")
    return ok


def save(args: argparse.Namespace, name: str, result: dict[str, Any]) -> None:
    folder = args.work / "results"
    folder.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "at": time.strftime("%Y-%m-%d %H:%M:%S"), **result}
    result.setdefault("machine", machine())
    path = folder / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"(saved {path})")


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def quiet_logging(level: str = "warning", stream: Any = None) -> None:
    from daemon.core.logs import configure_logging

    configure_logging("json", level, stream or sys.stderr)


def db_counts(root: Path) -> dict[str, int]:
    """Rows that must not change across a restart (read-only connection)."""
    conn = sqlite3.connect(f"file:{root / 'state' / 'inboxd.db'}?mode=ro", uri=True)
    try:
        return {
            table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("pairs", "embeddings", "batches", "duplicates", "scores")
        }
    finally:
        conn.close()


def copy_root(source: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    (target / "state" / "inboxd.lock").unlink(missing_ok=True)
    return target


# -- the 17k root ----------------------------------------------------------------------


def root_path(args: argparse.Namespace) -> Path:
    return args.work / f"root-{args.pairs}p-{args.files}f-s{args.seed}"


def ensure_root(args: argparse.Namespace) -> Path:
    """The prepared root (corpus delivered, embedded, de-duplicated, scored, indexed)."""
    root = root_path(args)
    if args.rebuild or not (root / "state" / "bench-ready.json").exists():
        print(f"building the {args.pairs:,}-pair root at {root} (runs the embed benchmark)")
        bench_embed(args)
        args.rebuild = False
    return root


class _Timers:
    """Wall and CPU seconds and calls per stage name."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)


def _timed_stages(timers: _Timers) -> dict[Any, Any]:
    """The default stage table, each stage wrapped in a wall and CPU timer."""
    from daemon.stages import default_stages

    def wrap(name: str, stage: Callable[..., Any]) -> Callable[..., Any]:
        def run(batch: Any, ctx: Any, now: float) -> Any:
            w, c = time.perf_counter(), time.process_time()
            try:
                return stage(batch, ctx, now)
            finally:
                timers.wall[name] += time.perf_counter() - w
                timers.cpu[name] += time.process_time() - c
                timers.calls[name] += 1

        return run

    return {state: wrap(stage.__name__, stage) for state, stage in default_stages().items()}


def token_slots(model: Any, groups: list[list[str]], batch_size: int = 64) -> tuple[int, int]:
    """Token positions the model computes for ``groups`` (one encode call each), padding
    included, and the real tokens: sentence-transformers sorts a call's texts by character
    length, cuts batches of ``batch_size`` and pads each batch to its longest text."""
    limit = model.max_seq_length
    slots = real = 0
    for group in groups:
        ordered = sorted(group, key=len, reverse=True)
        lengths = [
            min(len(ids), limit)
            for ids in model.tokenizer(ordered, add_special_tokens=True)["input_ids"]
        ]
        real += sum(lengths)
        for start in range(0, len(lengths), batch_size):
            chunk = lengths[start : start + batch_size]
            slots += len(chunk) * max(chunk)
    return slots, real


class _PipelineRun:
    """A Service on its own root, fed one round of files at a time."""

    def __init__(self, root: Path, batch_size: int) -> None:
        from daemon.core.config import load_config
        from daemon.runtime.service import Service

        self.root, self.batch_size, self.timers = root, batch_size, _Timers()
        overrides = {
            "watch": {"settle_seconds": 0.0, "poll_seconds": 0.01},
            "embeddings": {"batch_size": batch_size},
        }
        self.service = Service(
            load_config(root, overrides=overrides), stages=_timed_stages(self.timers)
        )
        self.service.start(watch=False)
        self.wall = self.cpu = 0.0

    def feed(self, files: list[tuple[Any, list[dict[str, Any]]]]) -> tuple[float, float, float]:
        """Deliver ``files``, run until idle; (embed-stage wall, embed CPU, pipeline wall)."""
        for indicator, pairs in files:
            corpus.drop_atomically(
                corpus.file_path(self.root, indicator), corpus.envelope(indicator, pairs)
            )
        embed_wall, embed_cpu = self.timers.wall["embed"], self.timers.cpu["embed"]
        w, c = time.perf_counter(), time.process_time()
        assert self.service.pipeline is not None
        self.service.pipeline.rescan(time.time())
        self.service.run_once()
        wall = time.perf_counter() - w
        self.wall += wall
        self.cpu += time.process_time() - c
        return self.timers.wall["embed"] - embed_wall, self.timers.cpu["embed"] - embed_cpu, wall

    def finish(self) -> dict[str, Any]:
        assert self.service.store is not None and self.service.pipeline is not None
        db = self.service.store.db
        embedded = sum(
            json.loads(row[0]).get("embedded", 0)
            for row in db.execute("SELECT detail FROM transitions WHERE to_state = 'embedded'")
        )
        states = dict(db.execute("SELECT state, count(*) FROM batches GROUP BY state").fetchall())
        index_size = len(self.service.worker_services().index)
        self.service.stop()
        return {
            "embedded": embedded,
            "batches": states,
            "index_size": index_size,
            "db": db_counts(self.root),
        }


def bench_embed(args: argparse.Namespace) -> dict[str, Any]:
    """1. Pipeline embedding throughput vs a bare SentenceTransformer.encode of the same
    texts. The machine is shared, so the corpus is fed in rounds and every round times the
    bare encode and each pipeline back to back, in rotating order: all see the same load."""
    from benchmarks.reference import sentence_transformer

    quiet_logging()
    load_before = loadavg()
    sizes = list(dict.fromkeys(getattr(args, "batch_sizes", None) or [CONFIG_BATCH_SIZE]))
    roots = {
        bs: root_path(args) if i == 0 else Path(f"{root_path(args)}-bs{bs}")
        for i, bs in enumerate(sizes)
    }
    for root in roots.values():
        if root.exists():
            shutil.rmtree(root)
    files = list(corpus.corpus_files(args.pairs, files=args.files, seed=args.seed))
    texts_of = [
        list(dict.fromkeys(t for p in pairs for t in (p["question"], p["answer"])))
        for _, pairs in files
    ]
    texts = [t for group in texts_of for t in group]
    print(
        f"{len(files)} files, {args.pairs:,} pairs, {len(texts):,} distinct texts,"
        f" {args.rounds} rounds"
    )

    w = time.perf_counter()
    model = sentence_transformer()
    model_load_s = time.perf_counter() - w
    model.encode(texts[:128], batch_size=64, show_progress_bar=False)  # warm-up

    runs = {bs: _PipelineRun(roots[bs], bs) for bs in sizes}
    per_round = max(1, math.ceil(len(files) / args.rounds))
    rounds: list[dict[str, Any]] = []
    for r, start in enumerate(range(0, len(files), per_round)):
        chunk = files[start : start + per_round]
        chunk_texts = [t for group in texts_of[start : start + per_round] for t in group]
        jobs = ["bare", *sizes]
        jobs = jobs[r % len(jobs) :] + jobs[: r % len(jobs)]
        row: dict[str, Any] = {
            "round": r + 1,
            "files": len(chunk),
            "texts": len(chunk_texts),
            "order": jobs,
        }
        for job in jobs:
            if job == "bare":
                w, c = time.perf_counter(), time.process_time()
                model.encode(chunk_texts, batch_size=64, show_progress_bar=False)
                row["bare"] = (time.perf_counter() - w, time.process_time() - c)
            else:
                row[f"bs{job}"] = runs[job].feed(chunk)
        row["loadavg"] = loadavg()
        rounds.append(row)
        print(
            f"round {r + 1}: {len(chunk_texts):,} texts; bare {row['bare'][0]:.1f} s; "
            + "; ".join(f"pipeline bs{bs} embed {row[f'bs{bs}'][0]:.1f} s" for bs in sizes)
            + f"; load {row['loadavg']}",
            flush=True,
        )
    finished = {bs: runs[bs].finish() for bs in sizes}

    bare_wall = sum(r["bare"][0] for r in rounds)
    bare_cpu = sum(r["bare"][1] for r in rounds)
    bare_rate = len(texts) / bare_wall
    summary_rows = [
        [
            "bare model.encode(batch_size=64), per round",
            len(texts),
            bare_wall,
            bare_cpu,
            bare_rate,
            1.0,
            1.0,
        ]
    ]
    ratios: dict[int, dict[str, float]] = {}
    for bs in sizes:
        wall = sum(r[f"bs{bs}"][0] for r in rounds)
        cpu = sum(r[f"bs{bs}"][1] for r in rounds)
        embedded = finished[bs]["embedded"]
        ratios[bs] = {
            "wall": (embedded / wall) / bare_rate,
            "cpu": (embedded / cpu) / (len(texts) / bare_cpu),
        }
        summary_rows.append(
            [
                f"pipeline embed stage, [embeddings] batch_size={bs}",
                embedded,
                wall,
                cpu,
                embedded / wall,
                ratios[bs]["wall"],
                ratios[bs]["cpu"],
            ]
        )
    print()
    print(
        table(
            ["path", "texts", "wall s", "CPU s", "texts/s", "ratio (wall)", "ratio (CPU)"],
            summary_rows,
        )
    )
    print()
    print(
        table(
            [
                "round",
                "texts",
                "bare s",
                *[f"bs{bs} embed s" for bs in sizes],
                *[f"bs{bs} ratio" for bs in sizes],
                "load average",
            ],
            [
                [
                    r["round"],
                    r["texts"],
                    r["bare"][0],
                    *[r[f"bs{bs}"][0] for bs in sizes],
                    *[r["bare"][0] / r[f"bs{bs}"][0] for bs in sizes],
                    r["loadavg"],
                ]
                for r in rounds
            ],
        )
    )
    print()
    main_run = runs[sizes[0]]
    print(
        table(
            ["stage", "calls", "wall s", "CPU s", "share of pipeline"],
            [
                [
                    name,
                    main_run.timers.calls[name],
                    main_run.timers.wall[name],
                    main_run.timers.cpu[name],
                    f"{main_run.timers.wall[name] / main_run.wall:.1%}",
                ]
                for name in sorted(main_run.timers.wall, key=lambda n: -main_run.timers.wall[n])
            ]
            + [
                [
                    f"(whole pipeline, batch_size={sizes[0]})",
                    "",
                    main_run.wall,
                    main_run.cpu,
                    "100%",
                ]
            ],
        )
    )
    print()
    per_round_groups = [
        [t for group in texts_of[s : s + per_round] for t in group]
        for s in range(0, len(files), per_round)
    ]
    padding = {"bare: one call per round, batch 64": token_slots(model, per_round_groups, 64)}
    for bs in sizes:
        padding[f"embed stage: one call per file, batch {bs}"] = token_slots(model, texts_of, bs)
    split = [
        g
        for _, pairs in files
        for g in ([p["question"] for p in pairs], [p["answer"] for p in pairs])
    ]
    padding["what-if: per file, questions and answers apart, batch 64"] = token_slots(
        model, split, 64
    )
    bare_slots = padding["bare: one call per round, batch 64"][0]
    print(
        table(
            ["grouping", "token slots", "real tokens", "padding", "vs bare"],
            [
                [name, slots, real, f"{1 - real / slots:.1%}", slots / bare_slots]
                for name, (slots, real) in padding.items()
            ],
        )
    )
    primary = finished[sizes[0]]
    print(
        f"batches by state: {primary['batches']}; DB: {primary['db']};"
        f" index holds {primary['index_size']:,} pairs"
    )
    print(f"model load {model_load_s:.1f} s; load average before {load_before}, after {loadavg()}")
    ok = verdict(
        f"pipeline/bare embedding throughput (wall, batch_size={sizes[0]})",
        ratios[sizes[0]]["wall"],
        TARGETS["embed_ratio"],
        at_most=False,
    )
    for bs in sizes[1:]:
        print(
            f"      with [embeddings] batch_size={bs}: {ratios[bs]['wall']:.3f} (wall),"
            f" {ratios[bs]['cpu']:.3f} (CPU)"
        )
    result = {
        "pairs": args.pairs,
        "files": len(files),
        "texts": len(texts),
        "model_load_s": model_load_s,
        "rounds": rounds,
        "bare_wall_s": bare_wall,
        "bare_cpu_s": bare_cpu,
        "bare_texts_per_s": bare_rate,
        "ratios": ratios,
        "ratio": ratios[sizes[0]]["wall"],
        "pass": ok,
        "pipelines": {
            bs: {
                **finished[bs],
                "wall_s": runs[bs].wall,
                "stages": {
                    n: {
                        "calls": runs[bs].timers.calls[n],
                        "wall_s": runs[bs].timers.wall[n],
                        "cpu_s": runs[bs].timers.cpu[n],
                    }
                    for n in runs[bs].timers.wall
                },
            }
            for bs in sizes
        },
        "token_slots": {k: {"slots": v[0], "real": v[1]} for k, v in padding.items()},
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }
    (root_path(args) / "state" / "bench-ready.json").write_text(
        json.dumps(result, indent=2, default=str) + "\n"
    )
    save(args, f"embed-{args.pairs}", result)
    return result


# -- 2. drop to search ---------------------------------------------------------------------


@contextlib.contextmanager
def daemon_process(
    root: Path, settle: float, log_path: Path, batch_size: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``inboxd run`` on ``root``; stopped with SIGTERM (by its pid) on exit."""
    env = {**os.environ, "INBOXD_WATCH__SETTLE_SECONDS": str(settle)}
    if batch_size:
        env["INBOXD_EMBEDDINGS__BATCH_SIZE"] = str(batch_size)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(INBOXD), "--root", str(root), "--log-level", "info", "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def log_events(log_path: Path) -> list[dict[str, Any]]:
    events = []
    for line in log_path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            events.append(json.loads(line))
    return events


def wait_for_event(log_path: Path, name: str, timeout: float, proc: Any = None) -> float:
    """Seconds until the daemon logs ``name`` (polling its log file)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if any(e.get("event") == name for e in log_events(log_path)):
            return time.perf_counter() - started
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the daemon exited ({proc.returncode}); see {log_path}")
        time.sleep(0.02)
    raise TimeoutError(f"no {name} in {log_path} after {timeout} s")


def wait_for_state(
    conn: sqlite3.Connection, relpath: str, state: str, timeout: float
) -> tuple[int, float, float]:
    """Poll the DB: (batch id, wall time first seen, wall time ``state`` reached)."""
    seen = None
    deadline = time.time() + timeout
    while time.time() < deadline:
        row = conn.execute(
            "SELECT id, state FROM batches WHERE path = ? ORDER BY id DESC LIMIT 1", [relpath]
        ).fetchone()
        now = time.time()
        if row is not None:
            seen = seen or now
            if row[1] == state:
                return int(row[0]), seen, now
            if row[1] in ("rejected", "failed"):
                raise RuntimeError(f"{relpath}: batch {row[0]} is {row[1]}")
        time.sleep(0.005)
    raise TimeoutError(f"{relpath} did not reach {state} in {timeout} s")


def bench_latency(args: argparse.Namespace) -> dict[str, Any]:
    """2. A file landing in a running daemon until search returns its pairs."""
    from daemon.core.config import load_config
    from daemon.core.logs import get_logger
    from daemon.runtime.wiring import open_searcher

    base = ensure_root(args)
    quiet_logging()
    load_before = loadavg()
    root = copy_root(base, args.work / "latency-root")
    log_path = args.work / "latency-daemon.log"
    config = load_config(root)
    spare = corpus.indicators(len(corpus.load_catalog().indicators))[args.files :] or (
        corpus.indicators(args.files)
    )
    rows: list[dict[str, Any]] = []
    batch_size = getattr(args, "batch_size", None)
    with daemon_process(root, args.settle, log_path, batch_size) as proc:
        ready_s = wait_for_event(log_path, "daemon.ready", 120, proc)
        conn = sqlite3.connect(f"file:{root / 'state' / 'inboxd.db'}?mode=ro", uri=True)
        for n in range(-1, args.drops):  # drop -1 loads the model in the daemon: not counted
            indicator = spare[(n + 1) % len(spare)]
            pairs = corpus.pairs_for(
                indicator,
                args.drop_pairs,
                seed=args.seed,
                peers=corpus._peers(indicator),
                tag=f"drop{n + 1:02d}",
            )
            path = corpus.file_path(root, indicator, suffix=f"drop{n + 1:02d}")
            relpath = path.relative_to(root).as_posix()
            data = corpus.envelope(indicator, pairs)
            t0 = time.time()
            corpus.drop_atomically(path, data)
            batch_id, seen_at, indexed_at = wait_for_state(conn, relpath, "indexed", 600)
            wanted = {p["question"] for p in pairs}
            probe = pairs[len(pairs) // 2]["question"]
            tries, open_s, query_s = 0, 0.0, 0.0
            while True:
                tries += 1
                w = time.perf_counter()
                searcher = open_searcher(config, get_logger())
                open_s = time.perf_counter() - w
                w = time.perf_counter()
                hits = searcher.search(probe, k=5, mode="hybrid")
                query_s = time.perf_counter() - w
                searcher.store.close()
                if any(h.question in wanted for h in hits) or tries >= 20:
                    break
                time.sleep(0.05)
            found_at = time.time()
            if n < 0:
                print(f"warm-up drop: {found_at - t0:.2f} s (model load in the daemon)")
                time.sleep(1.0)
                continue
            stage_ms = {
                e["from_state"]: e.get("duration_ms", 0.0)
                for e in log_events(log_path)
                if e.get("event") == "batch.transition" and e.get("batch") == batch_id
            }
            rows.append(
                {
                    "drop": n + 1,
                    "pairs": len(pairs),
                    "detected_s": seen_at - t0,
                    "indexed_s": indexed_at - t0,
                    "searchable_s": found_at - t0,
                    "open_searcher_s": open_s,
                    "query_s": query_s,
                    "tries": tries,
                    "found": any(h.question in wanted for h in hits),
                    "stage_ms": stage_ms,
                }
            )
            time.sleep(1.0)  # let the daemon go idle, as between real deliveries
        conn.close()
    stages = ["detected", "settled", "validated", "imported", "embedded", "deduplicated", "scored"]
    names = {
        "detected": "settle (archive)",
        "settled": "validate",
        "validated": "import",
        "imported": "embed",
        "embedded": "dedupe",
        "deduplicated": "score",
        "scored": "index",
    }
    print()
    print(
        table(
            [
                "drop",
                "detected s",
                "indexed s",
                "searchable s",
                "open_searcher s",
                "query ms",
                "found",
            ],
            [
                [
                    r["drop"],
                    r["detected_s"],
                    r["indexed_s"],
                    r["searchable_s"],
                    r["open_searcher_s"],
                    r["query_s"] * 1000,
                    r["found"],
                ]
                for r in rows
            ],
        )
    )
    print()
    print(
        table(
            ["stage (daemon log)", "p50 ms", "max ms"],
            [
                [
                    names[s],
                    percentile([r["stage_ms"].get(s, 0.0) for r in rows], 50),
                    max(r["stage_ms"].get(s, 0.0) for r in rows),
                ]
                for s in stages
            ],
        )
    )
    p50 = percentile([r["searchable_s"] for r in rows], 50)
    summary = {
        "detected_p50_s": percentile([r["detected_s"] for r in rows], 50),
        "indexed_p50_s": percentile([r["indexed_s"] for r in rows], 50),
        "searchable_p50_s": p50,
        "searchable_max_s": max(r["searchable_s"] for r in rows),
        "open_searcher_p50_s": percentile([r["open_searcher_s"] for r in rows], 50),
    }
    print(
        f"daemon ready in {ready_s:.1f} s; settle {args.settle} s;"
        f" [embeddings] batch_size {batch_size or CONFIG_BATCH_SIZE}; "
        f"load average before {load_before}, after {loadavg()}"
    )
    print(", ".join(f"{k} {v:.2f}" for k, v in summary.items()))
    ok = verdict(
        "drop to search p50 (s)", p50, TARGETS["drop_to_search_p50_s"], at_most=True
    ) and all(r["found"] for r in rows)
    result = {
        "drops": rows,
        **summary,
        "settle_s": args.settle,
        "embed_batch_size": batch_size or CONFIG_BATCH_SIZE,
        "pass": ok,
        "daemon_ready_s": ready_s,
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }
    save(args, f"latency-bs{batch_size or CONFIG_BATCH_SIZE}", result)
    return result


# -- 3. search latency and recall ------------------------------------------------------


def bench_search(args: argparse.Namespace) -> dict[str, Any]:
    """3. Searcher.search latency (query embedding included) and hnswlib recall@10."""
    import numpy as np

    from daemon.core.config import load_config
    from daemon.core.logs import get_logger
    from daemon.refine.corpus import pair_vectors
    from daemon.runtime.wiring import open_searcher
    from daemon.store import corpus as q

    root = ensure_root(args)
    quiet_logging()
    load_before = loadavg()
    searcher = open_searcher(load_config(root), get_logger())
    searcher.embedder.embed_query("warm-up")  # the model is loaded
    queries = corpus.queries(args.queries, seed=args.seed + 1)
    for text in queries[:20]:  # warm-up
        searcher.search(text, mode="hybrid")
    latency: dict[str, list[float]] = {}

    def run(label: str, mode: str) -> None:
        times = []
        for text in queries:
            w = time.perf_counter()
            searcher.search(text, k=5, mode=mode)  # type: ignore[arg-type]
            times.append((time.perf_counter() - w) * 1000)
        latency[label] = times

    for mode in ("dense", "hybrid", "lexical"):
        run(mode, mode)
    kinds = ("question", "indicator name or alias", "how is <name> calculated", "name + phrase")
    by_kind = {
        kind: [t for i, t in enumerate(latency["hybrid"]) if i % 4 == k]
        for k, kind in enumerate(kinds)
    }
    embed_ms = []
    for text in queries[:200]:
        w = time.perf_counter()
        searcher.embedder.embed_query(text)
        embed_ms.append((time.perf_counter() - w) * 1000)

    # Recall@10 of the index against exact search over the same vectors.
    ids = sorted(searcher.index.ids)
    rows = q.pairs_by_id(searcher.store.db, ids)
    ids = [int(r["id"]) for r in rows]
    vectors = pair_vectors(searcher.store, searcher.embedder.model_id, rows)
    id_array = np.asarray(ids)
    recall_queries = corpus.queries(args.recall_queries, seed=args.seed + 2)
    query_vectors = searcher.embedder.embed_documents(recall_queries)
    rng = np.random.default_rng(args.seed)
    self_vectors = vectors[rng.choice(len(vectors), size=min(1000, len(vectors)), replace=False)]

    def recall(qv: Any) -> tuple[float, float, float]:
        w = time.perf_counter()
        exact_scores = qv @ vectors.T
        top = np.argpartition(-exact_scores, 10, axis=1)[:, :10]
        brute_ms = (time.perf_counter() - w) * 1000 / len(qv)
        hits, hnsw_s = 0, 0.0
        for row, v in enumerate(qv):
            w = time.perf_counter()
            found = {pid for pid, _ in searcher.index.query(v, 10)}
            hnsw_s += time.perf_counter() - w
            hits += len(found & set(id_array[top[row]].tolist()))
        return hits / (10 * len(qv)), brute_ms, hnsw_s * 1000 / len(qv)

    r_queries, brute_q, hnsw_q = recall(query_vectors)
    r_self, brute_s, hnsw_s = recall(self_vectors)
    searcher.store.close()
    print()
    print(
        table(
            ["mode", "queries", "p50 ms", "p95 ms", "p99 ms", "mean ms"],
            [
                [
                    m,
                    len(t),
                    percentile(t, 50),
                    percentile(t, 95),
                    percentile(t, 99),
                    statistics.mean(t),
                ]
                for m, t in latency.items()
            ]
            + [
                [
                    "(query embedding only)",
                    len(embed_ms),
                    percentile(embed_ms, 50),
                    percentile(embed_ms, 95),
                    percentile(embed_ms, 99),
                    statistics.mean(embed_ms),
                ]
            ],
        )
    )
    print()
    print(
        table(
            ["hybrid, by query kind", "queries", "p50 ms", "p99 ms", "max ms"],
            [
                [kind, len(t), percentile(t, 50), percentile(t, 99), max(t)]
                for kind, t in by_kind.items()
            ],
        )
    )
    print()
    print(
        table(
            ["recall@10 queries", "n", "recall@10", "hnswlib ms/query", "numpy exact ms/query"],
            [
                ["user-style queries", len(query_vectors), r_queries, hnsw_q, brute_q],
                ["stored pair vectors", len(self_vectors), r_self, hnsw_s, brute_s],
            ],
        )
    )
    print(f"index holds {len(ids):,} pairs; load average before {load_before}, after {loadavg()}")
    ok = all(
        [
            verdict(
                "dense search p50 (ms)",
                percentile(latency["dense"], 50),
                TARGETS["search_p50_ms"],
                at_most=True,
            ),
            verdict(
                "hybrid search p50 (ms)",
                percentile(latency["hybrid"], 50),
                TARGETS["search_p50_ms"],
                at_most=True,
            ),
            verdict("hnswlib recall@10", r_queries, TARGETS["recall_at_10"], at_most=False),
        ]
    )
    result = {
        "index_size": len(ids),
        "latency_ms": {
            m: {
                "p50": percentile(t, 50),
                "p95": percentile(t, 95),
                "p99": percentile(t, 99),
                "mean": statistics.mean(t),
                "n": len(t),
            }
            for m, t in {**latency, "embed_query": embed_ms}.items()
        },
        "hybrid_by_kind_ms": {
            kind: {"p50": percentile(t, 50), "p99": percentile(t, 99), "max": max(t)}
            for kind, t in by_kind.items()
        },
        "recall_at_10": {"queries": r_queries, "stored_vectors": r_self},
        "hnsw_ms_per_query": hnsw_q,
        "numpy_exact_ms_per_query": brute_q,
        "pass": ok,
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }
    save(args, "search", result)
    return result


# -- 4. restart ----------------------------------------------------------------------------


def child_restart_searcher(root: Path) -> dict[str, Any]:
    """In a fresh process: open_searcher, then the model, then the first queries."""
    t = time.perf_counter()
    from daemon.core.config import load_config
    from daemon.core.logs import get_logger
    from daemon.runtime.wiring import open_searcher

    imports_s = time.perf_counter() - t
    buffer = io.StringIO()
    quiet_logging("info", buffer)
    t = time.perf_counter()
    searcher = open_searcher(load_config(root), get_logger())
    open_s = time.perf_counter() - t
    t = time.perf_counter()
    searcher.embedder.embed_query("warm-up")  # loads the model
    model_s = time.perf_counter() - t
    t = time.perf_counter()
    hits = searcher.search("how is the funding rate calculated", mode="hybrid")
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    searcher.search("MVRV Z-Score meaning", mode="hybrid")
    second_s = time.perf_counter() - t
    events = [json.loads(x)["event"] for x in buffer.getvalue().splitlines() if x.startswith("{")]
    return {
        "imports_s": imports_s,
        "open_searcher_s": open_s,
        "model_load_s": model_s,
        "first_query_s": first_s,
        "second_query_s": second_s,
        "hits": len(hits),
        "index_events": [e for e in events if e.startswith("index.")],
        "index_size": len(searcher.index),
    }


def child_restart_service(root: Path, settle: float) -> dict[str, Any]:
    """In a fresh process: Service.start (lock, migrate, load index, rescan), run_once."""
    t = time.perf_counter()
    from daemon.core.config import load_config
    from daemon.runtime.service import Service

    imports_s = time.perf_counter() - t
    buffer = io.StringIO()
    quiet_logging("info", buffer)
    config = load_config(root, overrides={"watch": {"settle_seconds": settle}})
    service = Service(config)
    t = time.perf_counter()
    service.start(watch=False)
    start_s = time.perf_counter() - t
    index = service.worker_services().index if service.worker else None
    t = time.perf_counter()
    service.run_once()
    run_once_s = time.perf_counter() - t
    service.stop()
    events = [json.loads(x)["event"] for x in buffer.getvalue().splitlines() if x.startswith("{")]
    return {
        "imports_s": imports_s,
        "service_start_s": start_s,
        "run_once_s": run_once_s,
        "index_size": len(index) if index is not None else 0,
        "index_events": [e for e in events if e.startswith("index.")],
        "model_loaded": "model.loaded" in events,
    }


def _child(args: list[str]) -> dict[str, Any]:
    w = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - w
    if out.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    return result


def bench_restart(args: argparse.Namespace) -> dict[str, Any]:
    """4. Restart with the corpus indexed: ready to serve, without re-embedding."""
    base = ensure_root(args)
    load_before = loadavg()
    root = copy_root(base, args.work / "restart-root")
    before = db_counts(root)
    searcher = _child(["_child-searcher", str(root)])
    service = _child(["_child-service", str(root), str(args.settle)])
    # A real `inboxd run`: process start to daemon.ready, then let the rescan settle.
    log_path = args.work / "restart-daemon.log"
    with daemon_process(root, args.settle, log_path) as proc:
        daemon_ready_s = wait_for_event(log_path, "daemon.ready", 120, proc)
        time.sleep(args.settle + 1.5)
    daemon_events = [e.get("event") for e in log_events(log_path)]
    # The index missing: rebuilt from stored vectors (still no embedding).
    rebuilt_root = copy_root(base, args.work / "restart-rebuild-root")
    shutil.rmtree(rebuilt_root / "state" / "index")
    rebuild = _child(["_child-searcher", str(rebuilt_root)])
    after = db_counts(root)
    after_rebuild = db_counts(rebuilt_root)
    unchanged = before == after and before == after_rebuild
    ready_searcher = searcher["open_searcher_s"] + searcher["first_query_s"]
    print()
    print(
        table(
            ["restart path", "seconds", "notes"],
            [
                ["searcher: imports", searcher["imports_s"], "fresh process"],
                [
                    "searcher: open_searcher",
                    searcher["open_searcher_s"],
                    ",".join(searcher["index_events"]),
                ],
                [
                    "searcher: model load (separate)",
                    searcher["model_load_s"],
                    "onnxruntime + tokenizers import, session",
                ],
                ["searcher: first query", searcher["first_query_s"], "hybrid, model loaded"],
                ["searcher: second query", searcher["second_query_s"], ""],
                ["searcher ready (open + first query)", ready_searcher, "excludes model load"],
                ["searcher ready incl. model load", ready_searcher + searcher["model_load_s"], ""],
                [
                    "searcher process wall",
                    searcher["process_wall_s"],
                    "interpreter + imports + all above",
                ],
                ["Service.start", service["service_start_s"], ",".join(service["index_events"])],
                [
                    "Service.run_once after start",
                    service["run_once_s"],
                    f"settle {args.settle} s; model loaded: {service['model_loaded']}",
                ],
                [
                    "`inboxd run` spawn to daemon.ready",
                    daemon_ready_s,
                    "process start, imports, start, rescan",
                ],
                [
                    "open_searcher, index missing",
                    rebuild["open_searcher_s"],
                    ",".join(rebuild["index_events"]),
                ],
            ],
        )
    )
    print(
        f"DB before {before}; after {after}; load average before {load_before}, after {loadavg()}"
    )
    if not unchanged:
        print("!! the DB changed across the restart (re-embedding or re-import)")
    ok = all(
        [
            verdict(
                "restart: open_searcher + first query (s)",
                ready_searcher,
                TARGETS["restart_ready_s"],
                at_most=True,
            ),
            verdict(
                "restart: Service.start (s)",
                service["service_start_s"],
                TARGETS["restart_ready_s"],
                at_most=True,
            ),
            unchanged,
        ]
    )
    result = {
        "searcher": searcher,
        "service": service,
        "daemon_ready_s": daemon_ready_s,
        "daemon_index_events": [e for e in daemon_events if str(e).startswith("index.")],
        "rebuild": rebuild,
        "db_before": before,
        "db_after": after,
        "unchanged": unchanged,
        "ready_searcher_s": ready_searcher,
        "pass": ok,
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }
    save(args, "restart", result)
    return result


# -- 5. de-duplication at scale ------------------------------------------------------------


def _clusters(labels: Any, distances: Any, threshold: float) -> tuple[float, int, int]:
    """The union-find step of refine.redecide_duplicates on a kNN graph: (seconds,
    clusters of two or more, duplicates)."""
    from daemon.refine.corpus import UnionFind

    t = time.perf_counter()
    groups = UnionFind(len(labels))
    groups.link_neighbours(labels, distances, threshold)
    multi = [m for m in groups.clusters().values() if len(m) > 1]
    return time.perf_counter() - t, len(multi), sum(len(m) - 1 for m in multi)


def knn_clusters(vectors: Any, threshold: float, neighbours: int, params: Any) -> dict[str, Any]:
    """The core of refine.redecide_duplicates, on a matrix: hnswlib kNN graph, union-find.

    Kept line for line with redecide_duplicates (minus the DB reads and writes), through
    the same daemon.refine.index.build and VectorIndex.knn_all.
    """
    from daemon.refine.index import build

    n = len(vectors)
    t = time.perf_counter()
    graph = build(list(range(n)), vectors, "bench", vectors.shape[1], params)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    labels, distances = graph.knn_all(vectors, min(neighbours + 1, n))
    knn_s = time.perf_counter() - t
    union_s, clusters, duplicates = _clusters(labels, distances, threshold)
    return {
        "build_s": build_s,
        "knn_s": knn_s,
        "union_s": union_s,
        "total_s": build_s + knn_s + union_s,
        "clusters": clusters,
        "duplicates": duplicates,
    }


def exact_clusters(vectors: Any, threshold: float, neighbours: int) -> dict[str, Any]:
    """The same graph by exact search (blocked numpy matrix products): the n² reference."""
    import numpy as np

    n, k = len(vectors), min(neighbours + 1, len(vectors))
    labels = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    t = time.perf_counter()
    for start in range(0, n, 1024):
        sims = vectors[start : start + 1024] @ vectors.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        labels[start : start + len(sims)] = top
        distances[start : start + len(sims)] = 1.0 - np.take_along_axis(sims, top, axis=1)
    knn_s = time.perf_counter() - t
    union_s, clusters, duplicates = _clusters(labels, distances, threshold)
    return {
        "build_s": 0.0,
        "knn_s": knn_s,
        "union_s": union_s,
        "total_s": knn_s + union_s,
        "clusters": clusters,
        "duplicates": duplicates,
    }


def random_vectors(n: int, seed: int, dup_rate: float = 0.01) -> tuple[Any, int]:
    """Unit vectors, uniform on the sphere, with ``dup_rate`` near copies (cosine ~0.98);
    also how many planted copies survive (a copy whose original was itself overwritten
    by another copy is no longer a duplicate)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        chunk = rng.standard_normal((min(100_000, n - start), DIM), dtype=np.float32)
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        x[start : start + len(chunk)] = chunk
    k = int(n * dup_rate)
    src = rng.choice(n, size=k, replace=False)
    dst = rng.choice(n, size=k, replace=False)
    x[dst] = x[src] + rng.standard_normal((k, DIM), dtype=np.float32) * 0.01
    x[dst] /= np.linalg.norm(x[dst], axis=1, keepdims=True)
    planted = int(np.count_nonzero(~np.isin(src, dst)))
    return x, planted


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child_dedup(kind: str, n: int, m: int, efc: int, seed: int, root: str) -> dict[str, Any]:
    """One size in a fresh process, so ru_maxrss is this size's peak."""
    import numpy as np

    from daemon.refine.index import IndexParams

    baseline = maxrss_mb()
    params = IndexParams(m=m, ef_construction=efc)
    if kind == "db":  # the real redecide_duplicates on a copy of the 17k root's DB
        from daemon.core.config import load_config
        from daemon.providers.scorers import make_scorer
        from daemon.refine.corpus import redecide_duplicates
        from daemon.store import Store

        quiet_logging()
        config = load_config(Path(root))
        store = Store(config.db_path)
        t = time.perf_counter()
        found = redecide_duplicates(
            store,
            f"local/{MODEL}",
            make_scorer(config).name,
            config.dedup.threshold,
            config.dedup.neighbours,
            time.time(),
        )
        total = time.perf_counter() - t
        store.close()
        return {
            "kind": kind,
            "n": found.pairs,
            "M": 16,
            "ef_construction": 200,
            "total_s": total,
            "clusters": found.clusters,
            "duplicates": found.duplicates,
            "baseline_rss_mb": baseline,
            "peak_rss_mb": maxrss_mb(),
            "input_mb": found.pairs * DIM * 4 / 2**20,
        }
    if kind == "corpus":  # the real 17k pair vectors, through the core function
        from daemon.refine.corpus import pair_vectors
        from daemon.store import Store
        from daemon.store import corpus as q

        store = Store(Path(root) / "state" / "inboxd.db", readonly=True)
        ids = [int(r[0]) for r in store.db.execute("SELECT id FROM pairs ORDER BY id")]
        vectors = pair_vectors(store, f"local/{MODEL}", q.pairs_by_id(store.db, ids))
        store.close()
        planted = None
    else:
        vectors, planted = random_vectors(n, seed)
    data_rss = maxrss_mb()
    vectors = np.ascontiguousarray(vectors)
    found = (
        exact_clusters(vectors, 0.92, 10)
        if kind == "exact"
        else knn_clusters(vectors, 0.92, 10, params)
    )
    return {
        "kind": kind,
        "n": len(vectors),
        "M": m if kind != "exact" else "-",
        "ef_construction": efc if kind != "exact" else "-",
        **found,
        "baseline_rss_mb": baseline,
        "after_input_rss_mb": data_rss,
        "peak_rss_mb": maxrss_mb(),
        "input_mb": vectors.nbytes / 2**20,
        "planted": planted,
    }


def bench_dedup(args: argparse.Namespace) -> dict[str, Any]:
    """5. kNN graph + union-find at 17k, 100k and 1M vectors: time and peak memory."""
    base = ensure_root(args) if args.dedup_db else None
    load_before = loadavg()
    runs: list[dict[str, Any]] = []
    if base is not None:
        db_root = copy_root(base, args.work / "dedup-root")
        print("17k pairs through redecide_duplicates (DB path) ...", flush=True)
        runs.append(_child(["_child-dedup", "db", "0", "16", "200", str(args.seed), str(db_root)]))
        print("17k real pair vectors through the core function ...", flush=True)
        runs.append(
            _child(["_child-dedup", "corpus", "0", "16", "200", str(args.seed), str(db_root)])
        )
    for n in args.sizes:
        large = n >= args.large_from
        m, efc = (args.large_m, args.large_efc) if large else (16, 200)
        print(f"{n:,} random vectors (M={m}, ef_construction={efc}) ...", flush=True)
        runs.append(
            _child(["_child-dedup", "random", str(n), str(m), str(efc), str(args.seed), ""])
        )
    for n in [n for n in args.sizes if n <= args.exact_up_to]:
        print(f"{n:,} random vectors, exact kNN by numpy (the n² reference) ...", flush=True)
        runs.append(_child(["_child-dedup", "exact", str(n), "0", "0", str(args.seed), ""]))
    for r in runs:
        r["per_nlogn_ns"] = r["total_s"] / (r["n"] * math.log2(r["n"])) * 1e9
        r["per_n2_ps"] = r["total_s"] / (r["n"] ** 2) * 1e12
    print()
    print(
        table(
            [
                "input",
                "n",
                "M/efC",
                "build s",
                "kNN s",
                "union-find s",
                "total s",
                "peak RSS MB",
                "input MB",
                "t/(n log2 n) ns",
                "t/n² ps",
                "dups found/planted",
            ],
            [
                [
                    r["kind"],
                    r["n"],
                    f"{r['M']}/{r['ef_construction']}",
                    r.get("build_s", ""),
                    r.get("knn_s", ""),
                    r.get("union_s", ""),
                    r["total_s"],
                    r["peak_rss_mb"],
                    r["input_mb"],
                    r["per_nlogn_ns"],
                    r["per_n2_ps"],
                    r["duplicates"]
                    if r.get("planted") is None
                    else f"{r['duplicates']:,}/{r['planted']:,}",
                ]
                for r in runs
            ],
        )
    )
    random_runs = sorted((r for r in runs if r["kind"] == "random"), key=lambda r: r["n"])
    same = [r for r in random_runs if (r["M"], r["ef_construction"]) == (16, 200)]
    exponents = []
    for a, b in itertools.pairwise(random_runs):
        e = math.log(b["total_s"] / a["total_s"]) / math.log(b["n"] / a["n"])
        nlogn = math.log(b["n"] * math.log2(b["n"]) / (a["n"] * math.log2(a["n"])))
        same_params = (a["M"], a["ef_construction"]) == (b["M"], b["ef_construction"])
        exponents.append({"from": a["n"], "to": b["n"], "exponent": e, "same_params": same_params})
        print(
            f"growth {a['n']:,} -> {b['n']:,}: time ~ n^{e:.2f}"
            f" (n log n gives n^{nlogn / math.log(b['n'] / a['n']):.2f}, n² gives n^2.00)"
            + ("" if same_params else "; parameters differ between these sizes")
        )
    comparable = same if len(same) >= 2 else random_runs
    spread = max(r["per_nlogn_ns"] for r in comparable) / min(r["per_nlogn_ns"] for r in comparable)
    print(f"load average before {load_before}, after {loadavg()}")
    ok = verdict(
        "time/(n log n) spread over sizes with the same parameters",
        spread,
        TARGETS["dedup_nlogn_spread"],
        at_most=True,
    )
    result = {
        "runs": runs,
        "exponents": exponents,
        "nlogn_spread": spread,
        "pass": ok,
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }
    save(args, "dedup-" + "-".join(str(n) for n in args.sizes), result)
    return result


# -- command line --------------------------------------------------------------------------


def parse(argv: Sequence[str]) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--pairs", type=int, default=17_000, help="corpus size (default 17000)")
    common.add_argument("--files", type=int, default=215, help="files the corpus is split into")
    common.add_argument("--seed", type=int, default=7)
    common.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder")
    common.add_argument("--rebuild", action="store_true", help="rebuild the prepared root")
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="bench", required=True)
    embed = sub.add_parser(
        "embed", parents=[common], help="1. pipeline vs bare embedding throughput"
    )
    embed.add_argument(
        "--batch-sizes",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[CONFIG_BATCH_SIZE],
        help="[embeddings] batch_size of each pipeline run side by side (default: the"
        " config's; the first is the one judged, e.g. 16,64 to see the effect of padding)",
    )
    embed.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    latency = sub.add_parser("latency", parents=[common], help="2. file landing to searchable")
    latency.add_argument("--drops", type=int, default=10)
    latency.add_argument("--drop-pairs", type=int, default=80)
    latency.add_argument("--settle", type=float, default=0.5)
    latency.add_argument(
        "--batch-size",
        type=int,
        help=f"[embeddings] batch_size for the daemon (default: the config's, {CONFIG_BATCH_SIZE})",
    )
    search = sub.add_parser("search", parents=[common], help="3. search latency and recall@10")
    search.add_argument("--queries", type=int, default=400)
    search.add_argument("--recall-queries", type=int, default=1000)
    restart = sub.add_parser("restart", parents=[common], help="4. restart to ready")
    restart.add_argument("--settle", type=float, default=0.5)
    dedup = sub.add_parser("dedup", parents=[common], help="5. kNN graph + union-find scaling")
    dedup.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[17_000, 100_000, 1_000_000],
    )
    dedup.add_argument(
        "--large-from",
        type=int,
        default=1_000_000,
        help="sizes from here use --large-m/--large-efc",
    )
    dedup.add_argument("--large-m", type=int, default=16)
    dedup.add_argument("--large-efc", type=int, default=200)
    dedup.add_argument(
        "--exact-up-to",
        type=int,
        default=100_000,
        help="sizes up to this also run exact numpy kNN, the n² reference (0: none)",
    )
    dedup.add_argument(
        "--no-dedup-db", dest="dedup_db", action="store_false", help="skip the 17k DB path"
    )
    every = sub.add_parser("all", parents=[common], help="every benchmark, in order")
    every.set_defaults(
        batch_sizes=[CONFIG_BATCH_SIZE],
        rounds=5,
        drops=10,
        drop_pairs=80,
        settle=0.5,
        queries=400,
        recall_queries=1000,
        sizes=[17_000, 100_000, 1_000_000],
        large_from=1_000_000,
        large_m=16,
        large_efc=200,
        exact_up_to=100_000,
        dedup_db=True,
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    if argv and argv[0].startswith("_child-"):  # one measurement in a fresh process
        kind, rest = argv[0], list(argv[1:])
        if kind == "_child-searcher":
            result = child_restart_searcher(Path(rest[0]))
        elif kind == "_child-service":
            result = child_restart_service(Path(rest[0]), float(rest[1]))
        else:
            result = child_dedup(
                rest[0], int(rest[1]), int(rest[2]), int(rest[3]), int(rest[4]), rest[5]
            )
        print(json.dumps(result, default=str))
        return 0
    args = parse(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    facts = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    print(f"load average: {loadavg()}")
    benches = {
        "embed": bench_embed,
        "latency": bench_latency,
        "search": bench_search,
        "restart": bench_restart,
        "dedup": bench_dedup,
    }
    chosen = list(benches) if args.bench == "all" else [args.bench]
    results = {}
    for name in chosen:
        print(f"\n== {name} ==")
        results[name] = benches[name](args)
    return 0 if all(r.get("pass") for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
