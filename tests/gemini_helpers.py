"""Shared set-up for the Gemini provider tests: a configured root pointing at the
loopback FakeGemini, a migrated store with real pairs, and a stage context."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from gemini_fake import FakeGemini

from daemon.core.config import Config, load_config
from daemon.core.logs import get_logger
from daemon.core.records import PairRecord
from daemon.runtime.wiring import build_services
from daemon.services import Services
from daemon.store import Store

FAST_GEMINI: dict[str, Any] = {
    "poll_seconds": 0.01,
    "poll_max_seconds": 0.02,
    "timeout_seconds": 5.0,
    "max_attempts": 3,
    "backoff_base_seconds": 0.01,
    "backoff_max_seconds": 5.0,
}


def gemini_config(root: Path, fake: FakeGemini, **gemini: Any) -> Config:
    """A root whose judge (and, with embeddings=True, embedder) is the fake Gemini."""
    embeddings = gemini.pop("embeddings", False)
    overrides: dict[str, Any] = {
        "scoring": {"provider": "gemini"},
        "gemini": {**FAST_GEMINI, "base_url": fake.url, **gemini},
    }
    if embeddings:
        overrides["embeddings"] = {"provider": "gemini"}
    return load_config(root, overrides=overrides)


def open_store(config: Config) -> Store:
    store = Store(config.db_path)
    store.migrate()
    return store


def seed_pairs(store: Store, texts: list[tuple[str, str]], now: float = 1.0) -> list[str]:
    """Import (question, answer) pairs as one delivered batch; returns their hashes."""
    batch, _ = store.create_batch(
        agent="droid", path="outbox/droid/x_qa_pairs.json", sha256="1" * 64, size=1, now=now
    )
    records = [
        PairRecord(
            hash=hashlib.sha256(f"{q}\x1f{a}".encode()).hexdigest(),
            question=q,
            answer=a,
            position=f"item {i}",
        )
        for i, (q, a) in enumerate(texts)
    ]
    with store.transaction() as db:
        Store.import_pairs(db, batch.id, records, now)
    return [r.hash for r in records]


def sample_pairs(count: int, prefix: str = "RSI") -> list[tuple[str, str]]:
    return [
        (
            f"What does {prefix} setting {i} control?",
            f"{prefix} setting {i} is the look-back period of 14 bars; above 70 is overbought.",
        )
        for i in range(count)
    ]


def context(config: Config, store: Store) -> Services:
    """The services the daemon would build for this config (the fake's client inside)."""
    return build_services(config, store, get_logger())
