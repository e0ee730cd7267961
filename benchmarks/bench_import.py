"""Import benchmark: 17,000 pairs in ~215 files, through the validate+import path in-process
and through a real ``inboxd run`` process. Run on demand, not part of the test suite:

    .venv/bin/python benchmarks/bench_import.py            # the numbers in BENCHMARKS.md
    .venv/bin/python benchmarks/bench_import.py --full     # also wait for the whole pipeline

(a) in-process: a Pipeline with settle 0 and only the ingest stages (detected -> settled ->
    validated -> imported), stepped until idle. Reports pairs/second and peak RSS.
(b) daemon: ``inboxd run`` on a fresh root; the files are moved into outbox/ one by one
    (rename, as agents do); reports the time from the last file dropped until every batch
    is imported (or further), and the daemon's peak RSS (RUSAGE_CHILDREN).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DONE_STATES = ("imported", "embedded", "deduplicated", "scored", "indexed")
TARGET_SECONDS = 5.0

_NAMES = [
    ("sma", "Simple Moving Average"),
    ("ema", "Exponential Moving Average"),
    ("wma", "Weighted Moving Average"),
    ("rsi", "Relative Strength Index"),
    ("macd", "Moving Average Convergence Divergence"),
    ("atr", "Average True Range"),
    ("obv", "On-Balance Volume"),
    ("vwap", "Volume Weighted Average Price"),
    ("cci", "Commodity Channel Index"),
    ("adx", "Average Directional Index"),
    ("mfi", "Money Flow Index"),
    ("roc", "Rate of Change"),
]
_ASPECTS = [
    "How is the {name} ({abbr}) calculated on a {tf} chart with a period of {n}",
    "What does a reading of {x} on the {name} ({abbr}) tell a trader on the {tf} timeframe",
    "Why would a crypto trader lower the {abbr} period from {n} to {m} on {tf} candles",
    "What are the limitations of the {name} ({abbr}) in a sideways {asset} market",
    "How can the {abbr} confirm a breakout on {asset} when volume rises {x} percent",
    "Compare the {name} ({abbr}) with a {n}-period moving average on {asset}",
]
_SENTENCES = [
    "The {abbr} over {n} periods uses the last {n} closes, so each new candle drops the"
    " oldest one from the window.",
    "On the {tf} timeframe a period of {n} covers roughly {h} hours of trading, which"
    " filters most intraday noise on {asset}.",
    "A value of {x} is read against its recent range: readings above {hi} are stretched"
    " and readings below {lo} are depressed.",
    "Traders usually pair the {abbr} with volume or a trend filter, because on its own it"
    " lags turning points by about {lag} candles.",
    "In a sideways market the {abbr} crosses its signal line often, so a minimum distance of"
    " {x} percent avoids many false signals.",
    "The formula smooths with alpha = 2 / (N + 1); with N = {n} that gives alpha = {alpha}.",
    "Backtests on {asset} from 2019 to 2024 showed a win rate near {wr} percent when the"
    " signal agreed with the daily trend.",
    "Shorter periods such as {m} react faster but whipsaw more; longer ones such as {n}"
    " are steadier but later.",
]


def make_corpus(files: int, pairs: int, seed: int = 17) -> dict[str, bytes]:
    """``pairs`` distinct pairs spread over ``files`` files, in the three envelopes and both
    layouts, with question and answer lengths like an agent's (80-200 / 300-1,000 chars)."""
    rng = random.Random(seed)
    corpus: dict[str, bytes] = {}
    per_file, extra = divmod(pairs, files)
    for f in range(files):
        abbr, name = _NAMES[f % len(_NAMES)]
        session = f % 43 + 2
        items = []
        for i in range(per_file + (f < extra)):
            values = {
                "name": name,
                "abbr": abbr.upper(),
                "tf": rng.choice(["1h", "4h", "daily", "15m", "weekly"]),
                "asset": rng.choice(["BTC", "ETH", "SOL", "altcoin", "BTC/ETH"]),
                "n": rng.choice([9, 12, 14, 20, 26, 50, 200]),
                "m": rng.choice([5, 7, 10]),
                "x": rng.randint(2, 95),
                "h": rng.randint(10, 900),
                "hi": rng.choice([70, 80, 100]),
                "lo": rng.choice([20, 30, -100]),
                "lag": rng.randint(2, 12),
                "alpha": f"{rng.uniform(0.02, 0.4):.3f}",
                "wr": rng.randint(40, 70),
            }
            question = rng.choice(_ASPECTS).format(**values) + f" (case {f}-{i})?"
            answer = " ".join(
                rng.choice(_SENTENCES).format(**values) for _ in range(rng.randint(3, 7))
            )
            items.append(
                {
                    "id": f"{abbr}-{f:03d}-{i:03d}",
                    "question": question,
                    "answer": answer,
                    "indicator": abbr,
                    "type": rng.choice(["definition", "calculation", "interpretation", "signal"]),
                    "difficulty": rng.choice(["beginner", "intermediate", "advanced"]),
                    "tags": [abbr, "crypto"],
                }
            )
        stem = f"{abbr}_{f:03d}_qa_pairs"
        if f % 3 == 0:
            corpus[f"outbox/bench/{stem}.json"] = json.dumps(items, indent=2).encode()
        elif f % 3 == 1:
            envelope = {"indicator": abbr, "indicator_name": name, "session": session}
            corpus[f"outbox/bench/session_{session:02d}/{stem}.json"] = json.dumps(
                {**envelope, "qa_pairs": items}, indent=2
            ).encode()
        else:
            lines = "".join(json.dumps(item) + "\n" for item in items)
            corpus[f"outbox/bench/{stem}.jsonl"] = lines.encode()
    return corpus


def write_tree(base: Path, corpus: dict[str, bytes]) -> None:
    for relpath, data in corpus.items():
        path = base / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _mb(kilobytes: int) -> float:
    return kilobytes / 1024  # ru_maxrss is in KiB on Linux


# -- (a) in-process ---------------------------------------------------------------------


def bench_in_process(workdir: Path, corpus: dict[str, bytes]) -> dict[str, Any]:
    """Step a Pipeline (settle 0, ingest stages only) until idle."""
    from daemon.core.config import load_config
    from daemon.core.logs import configure_logging, get_logger
    from daemon.runtime.hooks import attach_intake_hooks
    from daemon.runtime.pipeline import Pipeline
    from daemon.runtime.wiring import build_services
    from daemon.stages.ingest import import_pairs
    from daemon.stages.settle import settle
    from daemon.stages.validate import validate
    from daemon.states import BatchState
    from daemon.store import Store

    root = workdir / "inproc"
    write_tree(root, corpus)
    configure_logging("json", "warning", stream=sys.stderr)
    config = load_config(root, overrides={"watch": {"settle_seconds": 0}})
    config.archive_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.db_path)
    store.migrate()
    ctx = attach_intake_hooks(build_services(config, store, get_logger()))
    stages = {
        BatchState.DETECTED: settle,
        BatchState.SETTLED: validate,
        BatchState.VALIDATED: import_pairs,
    }
    pipeline = Pipeline(ctx, stages)

    started = time.perf_counter()
    pipeline.rescan(time.time())
    took = pipeline.take_settled(time.time())
    taken = time.perf_counter()
    steps = 0
    while pipeline.mover.advance_one(time.time()) is not None:
        steps += 1
    done = time.perf_counter()

    pairs = store.db.execute("SELECT count(*) FROM pairs").fetchone()[0]
    states = dict(store.db.execute("SELECT state, count(*) FROM batches GROUP BY state").fetchall())
    store.close()
    return {
        "files": took,
        "pairs": pairs,
        "states": states,
        "steps": steps,
        "take_s": taken - started,
        "ingest_s": done - taken,
        "total_s": done - started,
        "pairs_per_s": pairs / (done - started),
        "peak_rss_mb": _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
    }


# -- (b) a real daemon ------------------------------------------------------------------


def _count(db: Path, states: tuple[str, ...]) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        marks = ", ".join("?" for _ in states)
        sql = f"SELECT count(*) FROM batches WHERE state IN ({marks})"
        return int(conn.execute(sql, states).fetchone()[0])
    finally:
        conn.close()


def _wait(predicate: Any, timeout: float, interval: float = 0.02) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return time.monotonic()
        except sqlite3.OperationalError:
            pass
        time.sleep(interval)
    return None


def bench_daemon(
    workdir: Path, corpus: dict[str, bytes], settle: float, full: bool
) -> dict[str, Any]:
    """Start ``inboxd run``, move the files in, time until every batch is imported."""
    root = workdir / "daemon"
    staging = workdir / "staging"
    for name in ("inbox", "outbox", "state"):
        (root / name).mkdir(parents=True)
    write_tree(staging, corpus)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INBOXD_")}
    env.update(
        INBOXD_WATCH__SETTLE_SECONDS=str(settle),
        INBOXD_WATCH__POLL_SECONDS="0.05",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    inboxd = Path(sys.executable).parent / "inboxd"
    log_path = workdir / "daemon.log"
    db = root / "state" / "inboxd.db"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(inboxd), "--root", str(root), "run"], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    try:
        if _wait(lambda: b"daemon.ready" in log_path.read_bytes(), 120) is None:
            raise SystemExit(f"the daemon did not start: {log_path.read_text()[-2000:]}")
        first_drop = time.monotonic()
        for relpath in corpus:  # one rename per file, in order, as an agent delivers
            target = root / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            (staging / relpath).rename(target)
        last_drop = time.monotonic()
        imported_at = _wait(lambda: _count(db, DONE_STATES) == len(corpus), 1800)
        indexed_at = None
        if full:
            indexed_at = _wait(lambda: _count(db, ("indexed",)) == len(corpus), 3600)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    pairs = conn.execute("SELECT count(*) FROM pairs").fetchone()[0]
    conn.close()
    return {
        "settle_s": settle,
        "drop_s": last_drop - first_drop,
        "to_imported_s": None if imported_at is None else imported_at - last_drop,
        "to_indexed_s": None if indexed_at is None else indexed_at - last_drop,
        "pairs": pairs,
        "exit_code": code,
        "peak_rss_mb": _mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss),
        "stage_ms": _stage_times(log_path),
    }


def _stage_times(log_path: Path) -> dict[str, float]:
    """Total duration_ms of each kind of move, from the daemon's JSON log."""
    totals: dict[str, float] = {}
    for raw in log_path.read_text(errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if line.get("event") == "batch.transition":
            state = line["state"]
            totals[state] = totals.get(state, 0.0) + float(line.get("duration_ms", 0))
        elif line.get("event") == "model.loaded":
            totals["(model load)"] = float(line.get("duration_ms", 0))
    return {k: round(v) for k, v in totals.items()}


# -- report -----------------------------------------------------------------------------


def machine() -> str:
    memory = "?"
    with open("/proc/meminfo") as meminfo:  # noqa: PTH123
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {memory} RAM, "
        f"{platform.platform()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=215)
    parser.add_argument("--pairs", type=int, default=17_000)
    parser.add_argument("--settle", type=float, default=0.5, help="the daemon's settle window")
    parser.add_argument("--full", action="store_true", help="(b) also wait for indexed")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="inboxd-bench-"))
    try:
        corpus = make_corpus(args.files, args.pairs)
        size = sum(len(data) for data in corpus.values())
        a = bench_in_process(workdir, corpus)
        b = bench_daemon(workdir, corpus, args.settle, args.full)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    rows = [
        ("corpus", f"{len(corpus)} files, {args.pairs:,} pairs, {size / 1e6:.1f} MB"),
        ("(a) take (read + hash) all files", f"{a['take_s']:.2f} s"),
        ("(a) settle+validate+import steps", f"{a['ingest_s']:.2f} s ({a['steps']} steps)"),
        ("(a) total, in-process", f"{a['total_s']:.2f} s = {a['pairs_per_s']:,.0f} pairs/s"),
        ("(a) peak RSS (this process)", f"{a['peak_rss_mb']:.0f} MB"),
        ("(b) settle window", f"{b['settle_s']} s"),
        ("(b) dropping the files (renames)", f"{b['drop_s']:.2f} s"),
        (
            "(b) last drop -> all imported",
            "timed out" if b["to_imported_s"] is None else f"{b['to_imported_s']:.2f} s",
        ),
    ]
    if args.full:
        done = b["to_indexed_s"]
        rows.append(
            ("(b) last drop -> all indexed", "timed out" if done is None else f"{done:.1f} s")
        )
    rows += [
        ("(b) daemon peak RSS", f"{b['peak_rss_mb']:.0f} MB"),
        ("(b) pairs in the DB / exit code", f"{b['pairs']:,} / {b['exit_code']}"),
        ("(b) time in moves (ms)", json.dumps(b["stage_ms"])),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"machine: {machine()}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    verdict = b["to_imported_s"] is not None and b["to_imported_s"] < TARGET_SECONDS
    print(
        f"target: all imported within {TARGET_SECONDS:.0f} s of the last drop: "
        f"{'met' if verdict else 'MISSED'}"
    )
    if a["pairs"] != args.pairs or b["pairs"] != args.pairs:
        raise SystemExit(f"pair count mismatch: in-process {a['pairs']}, daemon {b['pairs']}")


if __name__ == "__main__":
    main()
