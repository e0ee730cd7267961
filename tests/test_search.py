"""Search over a refined root with the real model and the real index: dense (hnswlib
cosine), lexical (FTS5 BM25) and hybrid (reciprocal rank fusion), its filters, and
``inboxd search --json``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import example_tree, process
from conftest import copy_tree, query, run_cli

from daemon.core.config import Config, load_config
from daemon.core.logs import get_logger
from daemon.runtime.wiring import open_searcher
from daemon.search.searcher import Searcher

AGENT = "quant"
SMA_CALC = "How is the Simple Moving Average (SMA) calculated for a crypto asset?"
EMA_SPEED = "Why does the Exponential Moving Average (EMA) react faster than the SMA?"
WMA_DEFINITION = "What is the Weighted Moving Average (WMA)?"

RSI_PAIRS = [
    {
        "question": "How is the Relative Strength Index (RSI) calculated?",
        "answer": "The RSI compares the average gain with the average loss over N periods,"
        " usually 14: RS = average gain / average loss and RSI = 100 - 100 / (1 + RS). On a"
        " daily BTC chart the 14-day RSI moves between 0 and 100.",
    },
    {
        "question": "What Relative Strength Index levels signal overbought and oversold"
        " conditions for Bitcoin?",
        "answer": "Readings above 70 are usually called overbought and readings below 30"
        " oversold. In strong crypto trends the RSI can stay above 70 for weeks, so many"
        " traders wait for it to cross back below 70 before acting.",
    },
    {
        "question": "What is RSI divergence and how do traders use it?",
        "answer": "A bearish divergence forms when price makes a higher high while the"
        " Relative Strength Index makes a lower high; a bullish one is the mirror image. It"
        " warns that momentum is fading, but on crypto charts divergences can persist for"
        " many candles before price turns.",
    },
]
MVRV_PAIRS = [
    {
        "question": "What does the MVRV ratio measure for Bitcoin?",
        "answer": "The Market Value to Realized Value (MVRV) ratio divides market"
        " capitalisation by realised capitalisation. Values above 3.5 have marked cycle tops"
        " and values below 1 have marked bottoms, because holders are on average in loss.",
    },
    {
        "question": "How is the MVRV Z-Score different from the plain Market Value to Realized"
        " Value ratio?",
        "answer": "The Z-Score subtracts realised cap from market cap and divides by the"
        " standard deviation of market cap, which normalises the MVRV signal across cycles;"
        " readings above 7 flagged past tops.",
    },
]
POOR_SMA = {"question": "What is the SMA good for?", "answer": "TODO: fill in"}


# -- fixtures -------------------------------------------------------------------------------


def _settings(root: Path) -> Config:
    return load_config(root, overrides={"watch": {"settle_seconds": 0.0, "poll_seconds": 0.01}})


def _refine(root: Path) -> Config:
    """Process everything under ``root`` with the real stages; returns its config."""
    config = _settings(root)
    process(config)
    states = {state for (state,) in query(root, "SELECT state FROM batches")}
    assert states == {"indexed"}, states
    return config


def _write(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))


# The real all-MiniLM-L6-v2 (conftest.model), loaded before the first test.
pytestmark = pytest.mark.usefixtures("model")


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Searcher]:
    """A Searcher over a root holding the shared example tree, refined."""
    source = example_tree()
    root = tmp_path_factory.mktemp("examples")
    copy_tree(source / "inbox", root / "inbox")
    copy_tree(source / "outbox", root / "outbox")
    searcher = open_searcher(_refine(root), get_logger())
    yield searcher
    searcher.store.close()


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A refined root with RSI and MVRV pairs (files named by the abbreviation, texts that
    spell the names out too), the example SMA pairs and one placeholder SMA answer."""
    root = tmp_path_factory.mktemp("indicators")
    outbox = root / "outbox" / AGENT
    _write(outbox / "rsi_qa_pairs.json", RSI_PAIRS)
    _write(outbox / "mvrv_qa_pairs.json", MVRV_PAIRS)
    _write(outbox / "sma_extra_qa_pairs.json", {"indicator": "sma", "qa_pairs": [POOR_SMA]})
    source = example_tree()
    copy_tree(source / "outbox" / "droid" / "session_02", outbox / "session_02")
    _refine(root)
    return root


@pytest.fixture(scope="module")
def corpus(corpus_root: Path) -> Iterator[Searcher]:
    searcher = open_searcher(_settings(corpus_root), get_logger())
    yield searcher
    searcher.store.close()


def _ids_of(root: Path, indicator: str) -> set[int]:
    return {pid for (pid,) in query(root, "SELECT id FROM pairs WHERE indicator = ?", [indicator])}


# -- relevance ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("how do you compute a simple moving average for crypto prices", SMA_CALC),
        ("why is the exponential moving average quicker to respond than the simple one", EMA_SPEED),
        ("what does a weighted moving average mean", WMA_DEFINITION),
    ],
    ids=["sma", "ema", "wma"],
)
def test_paraphrase_of_an_example_question_finds_that_pair_first(
    examples: Searcher, text: str, expected: str, mode: str
) -> None:
    """A question asked in other words finds the example pair it paraphrases first,
    within the seed's cosine distance of 0.5."""
    hits = examples.search(text, k=3, mode=mode)  # type: ignore[arg-type]
    assert hits, "no result"
    assert hits[0].question == expected
    assert hits[0].distance is not None
    assert hits[0].distance < 0.5


@pytest.mark.parametrize(("abbreviation", "indicator"), [("MVRV", "mvrv_ratio"), ("RSI", "rsi")])
def test_abbreviation_alone_finds_its_indicators_pairs_in_hybrid_mode(
    corpus: Searcher, corpus_root: Path, abbreviation: str, indicator: str
) -> None:
    """A query that is only an indicator's abbreviation ranks that indicator's pairs first
    in hybrid mode (BM25 and the catalog's aliases make up for the small model)."""
    wanted = _ids_of(corpus_root, indicator)
    assert wanted, f"the file name did not resolve to {indicator}"
    hits = corpus.search(abbreviation, k=len(wanted), mode="hybrid")
    assert {hit.pair_id for hit in hits} == wanted
    assert all(hit.distance is not None for hit in hits)  # filled in for lexical hits


def test_a_bare_indicator_name_is_within_the_threshold_in_hybrid_mode(corpus: Searcher) -> None:
    """A query that is only an indicator's full name ranks its pairs first in hybrid mode
    with the top hit within the seed's 0.5: the distance is to the closest of the pair's
    question (which names it), answer and pair vector, never farther than dense mode's."""
    hits = corpus.search("Relative Strength Index", k=3, mode="hybrid", max_distance=None)
    assert [hit.indicator for hit in hits] == ["rsi"] * 3
    assert hits[0].distance is not None
    assert hits[0].distance < 0.5
    dense = corpus.search("Relative Strength Index", k=3, mode="dense", max_distance=2.0)
    assert hits[0].distance <= min(hit.distance or 2.0 for hit in dense)


def test_hybrid_cuts_nothing_unless_asked_and_then_spares_only_bm25_matches(
    corpus: Searcher,
) -> None:
    """Far from everything and matching no word, a query still gets the k nearest pairs
    with their distances when no cut-off is given, and none under the seed's 0.5."""
    text = "quantum chromodynamics gluon lattice"
    uncut = corpus.search(text, k=3, mode="hybrid", max_distance=None)
    assert len(uncut) == 3
    assert all(hit.distance is not None and hit.distance > 0.5 for hit in uncut)
    assert corpus.search(text, k=3, mode="hybrid", max_distance=0.5) == []


def test_a_misspelled_name_finds_its_pairs_through_the_corpus_words(
    corpus: Searcher, corpus_root: Path
) -> None:
    """Lexical search respells words no pair contains to the nearest corpus word, so a
    misspelled indicator name still finds that indicator's pairs first."""
    wanted = _ids_of(corpus_root, "rsi")
    hits = corpus.search("Relatve Strenght Idnex", k=len(wanted), mode="lexical")
    assert {hit.pair_id for hit in hits} == wanted


def test_hits_carry_quality_tier_and_fused_score_best_first(corpus: Searcher) -> None:
    """Every hit has its rubric score and tier, and hits come best fused score first."""
    hits = corpus.search("relative strength index overbought", k=5)
    assert hits
    assert all(hit.quality is not None and hit.tier is not None for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


# -- filters --------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["rsi", "Relative Strength Index", "RSI (14)"])
def test_indicator_filter_keeps_only_that_indicators_pairs(
    corpus: Searcher, corpus_root: Path, spelling: str
) -> None:
    """--indicator, given by id, name or alias, keeps only that indicator's pairs."""
    hits = corpus.search("how do crypto traders read this indicator", k=10, indicator=spelling)
    assert hits
    assert {hit.indicator for hit in hits} == {"rsi"}
    assert {hit.pair_id for hit in hits} <= _ids_of(corpus_root, "rsi")


def test_min_quality_filter_drops_pairs_scored_below_it(corpus: Searcher) -> None:
    """--min-quality drops the placeholder answer the unfiltered search returns."""
    unfiltered = corpus.search("what is the SMA good for", k=10)
    poor = [hit for hit in unfiltered if hit.question == POOR_SMA["question"]]
    assert poor, "the placeholder pair should be found without a filter"
    assert poor[0].quality is not None
    assert poor[0].quality < 60
    assert poor[0].tier == "poor"

    filtered = corpus.search("what is the SMA good for", k=10, min_quality=60)
    assert filtered
    assert POOR_SMA["question"] not in {hit.question for hit in filtered}
    assert all(hit.quality is not None and hit.quality >= 60 for hit in filtered)


def test_max_distance_cuts_dense_hits_at_the_given_cosine_distance(corpus: Searcher) -> None:
    """--max-distance keeps only dense hits at or under the cut-off."""
    text = "how is the relative strength index computed"
    everything = corpus.search(text, k=10, mode="dense", max_distance=2.0)
    assert len(everything) >= 3
    distances = [hit.distance for hit in everything]
    assert all(d is not None for d in distances)
    assert distances == sorted(distances)  # type: ignore[type-var]
    cut = (distances[0] + distances[1]) / 2  # type: ignore[operator]
    near = corpus.search(text, k=10, mode="dense", max_distance=cut)
    assert [hit.pair_id for hit in near] == [everything[0].pair_id]
    assert corpus.search(text, k=10, mode="dense", max_distance=0.01) == []


# -- the command line -------------------------------------------------------------------------


def test_search_json_prints_only_json_on_stdout_and_logs_on_stderr(
    corpus: Searcher, corpus_root: Path
) -> None:
    """``inboxd search --json`` with filters prints one JSON document on stdout (the same
    hits as the library call) and its log lines on stderr."""
    result = run_cli(
        corpus_root,
        "search",
        "RSI",
        "--json",
        "-k",
        "3",
        "--indicator",
        "Relative Strength Index",
        "--min-quality",
        "50",
        "--max-distance",
        "0.9",
    )
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert isinstance(hits, list)
    assert hits
    assert {hit["indicator"] for hit in hits} == {"rsi"}
    assert all(hit["quality"] >= 50 for hit in hits)
    assert set(hits[0]) == {
        "pair_id",
        "question",
        "answer",
        "indicator",
        "quality",
        "tier",
        "distance",
        "score",
    }
    expected = corpus.search(
        "RSI", k=3, indicator="Relative Strength Index", min_quality=50, max_distance=0.9
    )
    assert [hit["pair_id"] for hit in hits] == [hit.pair_id for hit in expected]
    events = [json.loads(line)["event"] for line in result.stderr.splitlines() if line.strip()]
    assert "index.loaded" in events
