"""Helpers that build what the unit tests feed inboxd: pair dicts, Q&A files in an
agent's outbox, configured roots and migrated stores. Plain functions, no fixtures."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from daemon.core.config import Config, load_config
from daemon.core.records import Batch
from daemon.runtime.service import Service
from daemon.stages import Stage
from daemon.states import PIPELINE, BatchState
from daemon.store import Store

AGENT = "agent1"


def example_tree() -> Path:
    """The design's example tree (read-only; copy from it): a copy of
    ``shared/examples`` kept in tests/data so a bare clone runs every test."""
    default = Path(__file__).resolve().parent / "data" / "examples"
    path = Path(os.environ.get("INBOXD_EXAMPLES", default))
    if not (path / "outbox").is_dir():
        raise FileNotFoundError(f"example files not found at {path} (set INBOXD_EXAMPLES)")
    return path


#: Limits small enough that tests can pass them with a few kilobytes.
SMALL_LIMITS = {
    "max_file_bytes": 20_000,
    "max_json_depth": 32,
    "max_question_chars": 500,
    "max_answer_chars": 2_000,
}


def pair(n: int = 0, **fields: Any) -> dict[str, Any]:
    """A valid pair dict; ``n`` makes its text (and so its hash) unique."""
    return {
        "question": f"What does indicator {n} measure?",
        "answer": f"Indicator {n} measures the rate of change over {n + 2} periods.",
        **fields,
    }


def pairs(count: int, start: int = 0) -> list[dict[str, Any]]:
    """``count`` distinct valid pair dicts."""
    return [pair(n) for n in range(start, start + count)]


def as_json(value: Any) -> bytes:
    """``value`` as pretty JSON bytes, as an agent would write it."""
    return json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8")


def as_jsonl(items: Iterable[Any]) -> bytes:
    """One JSON value a line."""
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items).encode("utf-8")


def write(path: Path, data: bytes | str) -> Path:
    """Write ``data`` at ``path``, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def outbox_file(root: Path, name: str, data: bytes | str, agent: str = AGENT) -> Path:
    """A file delivered by ``agent``: ``outbox/<agent>/<name>`` (``name`` may hold folders)."""
    return write(root / "outbox" / agent / name, data)


def make_config(root: Path, **limits: int) -> Config:
    """A validated config for ``root``: settle window 0 and small limits (overridable)."""
    return load_config(
        root,
        overrides={
            "watch": {"settle_seconds": 0.0, "poll_seconds": 0.01},
            "limits": {**SMALL_LIMITS, **limits},
            "retry": {"max_attempts": 3, "base_seconds": 1.0, "max_seconds": 8.0},
        },
    )


def process(config: Config, stages: dict[BatchState, Stage] | None = None) -> None:
    """What ``run --once`` does: start a service on ``config`` (no watcher), process
    everything present, stop."""
    service = Service(config, stages=stages)
    service.start(watch=False)
    try:
        service.run_once()
    finally:
        service.stop()


def open_store(path: Path) -> Store:
    """A migrated store on a real SQLite file."""
    store = Store(path)
    store.migrate()
    return store


def new_batch(
    store: Store, path: str = "outbox/agent1/sma_qa_pairs.json", sha: str = "0" * 64, now: float = 0
) -> Batch:
    """A freshly detected batch."""
    batch, _ = store.create_batch(agent=AGENT, path=path, sha256=sha, size=10, now=now)
    return batch


def walk_to(store: Store, batch: Batch, state: BatchState, now: float = 0) -> Batch:
    """Advance ``batch`` along the happy path until it is in ``state`` (a pipeline state)."""
    for step in PIPELINE[PIPELINE.index(batch.state) + 1 : PIPELINE.index(state) + 1]:
        batch = store.advance(batch, step, now=now)
    return batch


def row_counts(store: Store, tables: Sequence[str] = ("transitions", "pairs")) -> dict[str, int]:
    """How many rows each table holds (to show that nothing was written)."""
    return {t: store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
