"""A real ``inboxd run`` killed with SIGKILL while it embeds, de-duplicates, scores and
indexes, then restarted: in the end every batch is indexed, every text was embedded
exactly once, and the saved index holds exactly the DB's active checked pairs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon, assert_consistent, drop, latest_states, query, scalar

from daemon.core.config import load_config
from daemon.core.logs import get_logger
from daemon.core.textid import text_hash
from daemon.refine.corpus import indexable_ids
from daemon.refine.index import META_FILE, ids_checksum
from daemon.runtime.wiring import open_searcher
from daemon.store import Store

pytestmark = pytest.mark.slow  # starts the daemon four times

INDICATORS = [
    "Relative Strength Index",
    "MACD",
    "Bollinger Bands",
    "Simple Moving Average",
    "Exponential Moving Average",
    "Stochastic Oscillator",
    "Average True Range",
    "On-Balance Volume",
    "Ichimoku Cloud",
    "Parabolic SAR",
    "Commodity Channel Index",
    "Williams %R",
    "Average Directional Index",
    "Money Flow Index",
    "Chaikin Money Flow",
    "Keltner Channels",
    "Donchian Channels",
    "MVRV Ratio",
    "Funding Rate",
    "Open Interest",
]
REFINING = {"embedded", "deduplicated", "scored"}


def _pairs(number: int, name: str) -> list[dict[str, Any]]:
    """Three distinct pairs about one indicator."""
    period = 5 + number
    return [
        {
            "question": f"How is the {name} calculated on a crypto chart?",
            "answer": f"The {name} is computed from the last {period} candles of price data;"
            f" traders on BTC usually start from the default window of {period} periods.",
        },
        {
            "question": f"What does a sharp rise in the {name} tell a trader?",
            "answer": f"A sharp rise in the {name} points to a change in momentum or"
            f" volatility; confirm it with volume before acting on it (case {number}).",
        },
        {
            "question": f"What are the main limitations of the {name}?",
            "answer": f"The {name} lags price and gives false signals in ranges; it is one"
            f" input among several, never a system on its own (note {number}).",
        },
    ]


def _deliver(root: Path, numbers: range) -> list[dict[str, Any]]:
    delivered = []
    for number in numbers:
        items = _pairs(number, INDICATORS[number])
        drop(
            root / "outbox" / "quant" / f"file{number:02d}_qa_pairs.json",
            json.dumps(items).encode(),
        )
        delivered += items
    return delivered


def _refining_transitions(daemon: Daemon) -> list[dict[str, Any]]:
    return [
        line
        for line in daemon.events("batch.transition")
        if line.get("state") in REFINING | {"indexed"}
    ]


def _kill_after(daemon: Daemon, seen: Callable[[list[dict[str, Any]]], bool], what: str) -> None:
    """SIGKILL the daemon as soon as its log of this run shows ``seen``."""
    daemon.wait_until(lambda: seen(_refining_transitions(daemon)), what=what)
    daemon.kill()
    states = latest_states(daemon.root)
    assert set(states.values()) != {"indexed"}, "the kill came after all the work was done"


def test_sigkill_during_refinement_loses_nothing_and_embeds_nothing_twice(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """Killed three times mid-refinement (after embedding, de-duplicating, scoring) and
    restarted, the daemon indexes every batch, embeds each text once, and leaves an index
    whose metadata names exactly the DB's active checked pairs; search works."""
    # One torch thread: on a busy 2-core machine two threads spin-wait on each other and
    # embedding six short texts takes a second instead of 30 ms (see the report).
    daemon = make_daemon(root, INBOXD_WATCH__SETTLE_SECONDS="0.1", OMP_NUM_THREADS="1")
    items = _deliver(root, range(12))

    daemon.start()
    _kill_after(daemon, lambda lines: len(lines) >= 3, "3 refinement transitions")

    daemon.start()
    items += _deliver(root, range(12, 20))
    _kill_after(daemon, lambda lines: len(lines) >= 5, "5 more refinement transitions")

    daemon.start()
    _kill_after(
        daemon,
        lambda lines: any(line["state"] == "scored" for line in lines),
        "a batch scored (indexing next)",
    )

    daemon.start()
    daemon.wait_until(
        lambda: len(latest_states(root)) == 20 and set(latest_states(root).values()) == {"indexed"},
        what="all 20 batches indexed",
    )
    assert daemon.terminate() == 0

    assert_consistent(root)
    texts = {text_hash(text) for item in items for text in (item["question"], item["answer"])}
    assert scalar(root, "SELECT count(*) FROM embeddings") == len(texts)
    embedded = [
        json.loads(detail)["embedded"]
        for (detail,) in query(root, "SELECT detail FROM transitions WHERE to_state = 'embedded'")
    ]
    assert sum(embedded) == len(texts)  # no text embedded by two batches or two runs
    assert scalar(root, "SELECT count(*) FROM pairs WHERE dedup_at IS NULL") == 0
    assert scalar(root, "SELECT count(*) FROM scores") == len(items)

    config = load_config(root)
    store = Store(config.db_path, readonly=True)
    try:
        ids = indexable_ids(store)
    finally:
        store.close()
    meta = json.loads((config.index_dir / META_FILE).read_text())
    assert (meta["count"], meta["ids_sha256"]) == (len(ids), ids_checksum(ids))

    searcher = open_searcher(config, get_logger())
    try:
        hits = searcher.search("what are the limitations of bollinger bands", k=3)
    finally:
        searcher.store.close()
    assert hits
    assert hits[0].pair_id in ids
    assert "Bollinger Bands" in hits[0].question
