"""The local quality rubric: a good answer outranks the usual failures, the sub-scores
and flags say why, the tiers sit where the design puts them, the score stays in 0-100,
a red flag never raises it, and scores are keyed by scorer name and version."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
from conftest import query, scalar
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.core.config import load_config
from daemon.providers.embedders.local import LocalEmbedder
from daemon.providers.scorers import PairToScore, Score, tier
from daemon.providers.scorers.rubric import PENALTY, WEIGHTS, RubricScorer
from daemon.runtime.service import Service
from daemon.runtime.wiring import build_services

QUESTION = "How is the Relative Strength Index (RSI) calculated?"
GOOD = (
    "The RSI compares the average gain with the average loss over N periods, usually 14:"
    " RS = average gain / average loss and RSI = 100 - 100 / (1 + RS). On a daily BTC chart"
    " the 14-day RSI moves between 0 and 100; readings above 70 are called overbought."
)
BAD = {
    "placeholder": "TODO: fill in",
    "refusal": "I'm sorry, I cannot help with that request about trading indicators.",
    "refusal-typographic": "I’m sorry, but I can’t help with that request about indicators.",
    "one-liner": "It measures momentum.",
    "repeats question": QUESTION,
}
FLAG_OF = {
    "placeholder": "placeholder",
    "refusal": "refusal",
    "refusal-typographic": "refusal",
    "one-liner": "one-liner",
    "repeats question": "repeats question",
}
SUBSCORES = {"relevance", "completeness", "specificity", "structure"}

# Good answers of typical length (35-350 words: completeness is already full) ...
GOOD_ANSWERS = [
    GOOD,
    "The SMA over N periods is the arithmetic mean of the last N closing prices: SMA ="
    " (C1 + C2 + ... + CN) / N. On a daily BTC chart a 20-period SMA averages the last 20"
    " closes. Each new candle adds the newest close and drops the oldest, so every price in"
    " the window carries the same weight of 1/N.",
    "A golden cross occurs when the 50-day SMA crosses above the 200-day SMA. Traders read it"
    " as a shift from a bearish to a bullish long-term trend. Because both averages lag"
    " price, the cross usually confirms a move that is already weeks old, so it is best"
    " combined with volume and momentum confirmation.",
]
# ... and sentences that each raise a red flag.
FLAG_SENTENCES = [
    "TODO: fill in the rest.",
    "[insert answer here]",
    "I'm sorry, I cannot help with that.",
    "As an AI I do not have access to live data.",
]


def _relevance(embedder: LocalEmbedder, question: str, answer: str) -> float:
    vectors = embedder.embed_documents([question, answer])
    return float(vectors[0] @ vectors[1])


def _score(answer: str, relevance: float | None, question: str = QUESTION) -> Score:
    return RubricScorer().score([PairToScore("h", question, answer, relevance)])[0]


# -- ranking and explanation ------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(BAD))
def test_good_answer_ranks_above_a_flawed_one_whose_flag_says_why(
    model: LocalEmbedder, kind: str
) -> None:
    """With relevance from the real model, a good answer scores above a placeholder, a
    refusal (straight or typographic apostrophes), a one-liner and a repeat of the
    question; the flawed one carries the flag that names its flaw."""
    good = _score(GOOD, _relevance(model, QUESTION, GOOD))
    bad = _score(BAD[kind], _relevance(model, QUESTION, BAD[kind]))
    assert good.score > bad.score
    assert good.flags == []
    assert FLAG_OF[kind] in bad.flags
    assert good.tier in ("premium", "good")
    assert bad.tier in ("fair", "poor")


def test_score_carries_its_subscores_flags_tier_and_rationale(model: LocalEmbedder) -> None:
    """A score has the four sub-scores (0-100), the flags and a readable rationale; its
    row adds the tier and stores the flags beside the sub-scores."""
    result = _score(BAD["one-liner"], _relevance(model, QUESTION, BAD["one-liner"]))
    assert set(result.subscores) == SUBSCORES
    assert all(0 <= value <= 100 for value in result.subscores.values())
    assert result.flags == ["one-liner"]
    assert result.rationale is not None
    assert "flags: one-liner" in result.rationale
    row = result.as_row()
    assert row["tier"] == result.tier
    assert row["subscores"] == {**result.subscores, "flags": ["one-liner"]}


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (100.0, "premium"),
        (90.0, "premium"),
        (89.9, "good"),
        (80.0, "good"),
        (79.9, "fair"),
        (60.0, "fair"),
        (59.9, "poor"),
        (0.0, "poor"),
    ],
)
def test_tiers_are_premium_from_90_good_from_80_fair_from_60_else_poor(
    value: float, name: str
) -> None:
    """Tier boundaries: premium >= 90, good >= 80, fair >= 60, poor below."""
    assert tier(value) == name
    assert Score("h", value, {}).tier == name


# -- invariants -------------------------------------------------------------------------------

relevances = st.none() | st.floats(min_value=-1.0, max_value=1.0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(question=st.text(max_size=300), answer=st.text(max_size=2000), relevance=relevances)
def test_score_and_subscores_stay_within_0_and_100_and_match_the_tier(
    question: str, answer: str, relevance: float | None
) -> None:
    """Whatever the text, the score and every sub-score lie in 0..100, the tier is the
    score's, and the score is the weighted sum less a fixed penalty per flag."""
    result = _score(answer, relevance, question)
    assert 0.0 <= result.score <= 100.0
    assert set(result.subscores) == SUBSCORES
    assert all(0.0 <= value <= 100.0 for value in result.subscores.values())
    assert result.tier == tier(result.score)
    weighted = sum(WEIGHTS[key] * value for key, value in result.subscores.items())
    expected = max(0.0, min(100.0, weighted - PENALTY * len(result.flags)))
    assert result.score == pytest.approx(expected, abs=0.2)


@settings(max_examples=200, deadline=None)
@given(
    answer=st.sampled_from(GOOD_ANSWERS),
    flag=st.sampled_from(FLAG_SENTENCES),
    where=st.integers(min_value=0, max_value=10),
    relevance=relevances,
)
def test_adding_a_red_flag_sentence_never_raises_the_score(
    answer: str, flag: str, where: int, relevance: float | None
) -> None:
    """Inserting a placeholder or refusal sentence into an answer flags it and never
    raises its score."""
    sentences = answer.split(". ")
    at = min(where, len(sentences) - 1)
    flagged = (
        ". ".join(sentences[:at]) + (". " if at else "") + flag + " " + ". ".join(sentences[at:])
    )
    before, after = _score(answer, relevance), _score(flagged, relevance)
    assert len(after.flags) > len(before.flags)
    assert after.score <= before.score


@settings(max_examples=200, deadline=None)
@given(
    question=st.text(max_size=200),
    answer=st.text(max_size=1000),
    cosine=st.floats(min_value=0.6, max_value=0.97),
)
def test_an_answer_that_echoes_the_question_never_scores_higher(
    question: str, answer: str, cosine: float
) -> None:
    """The same text judged to echo its question (cosine above 0.97: relevance is already
    full) gains the flag and never a point."""
    plain, echoed = _score(answer, cosine, question), _score(answer, 0.99, question)
    assert "repeats question" in echoed.flags
    assert echoed.score <= plain.score


# -- scores are keyed by scorer name and version ------------------------------------------------


class RubricVersion2(RubricScorer):
    """The same rubric released under a new version (what a rubric change looks like)."""

    name = "rubric/2"


def _run(root: Path, scorer: RubricScorer | None = None) -> None:
    config = load_config(root, overrides={"watch": {"settle_seconds": 0.0}})
    service = Service(config, services=partial(build_services, scorer=scorer))
    service.start(watch=False)
    try:
        service.run_once()
    finally:
        service.stop()


def _scored_details(root: Path) -> list[tuple[str, int]]:
    rows = query(root, "SELECT detail FROM transitions WHERE to_state = 'scored' ORDER BY id")
    return [(d["scorer"], d["scored"]) for d in (json.loads(r[0]) for r in rows)]


def test_a_new_scorer_version_scores_again_and_nothing_else_does(
    model: LocalEmbedder, tmp_path: Path
) -> None:
    """Pairs scored by rubric/1 are not scored again when they arrive under another file
    name or the daemon restarts; a scorer with a new name/version scores them again,
    beside the old scores."""
    root = tmp_path / "root"
    path = root / "outbox" / "quant" / "rsi_qa_pairs.json"
    path.parent.mkdir(parents=True)
    items = [
        {"question": QUESTION, "answer": GOOD},
        {"question": QUESTION, "answer": BAD["refusal"]},
    ]
    path.write_text(json.dumps(items))
    _run(root)
    first = query(root, "SELECT pair_hash, score, subscores FROM scores WHERE scorer = 'rubric/1'")
    assert len(first) == 2
    assert all(set(json.loads(sub)) == {*SUBSCORES, "flags"} for _, _, sub in first)

    path = path.rename(path.with_name("rsi_again_qa_pairs.json"))
    _run(root)  # a new batch with the same pairs
    _run(root)  # a restart with nothing new
    assert _scored_details(root) == [("rubric/1", 2), ("rubric/1", 0)]
    assert scalar(root, "SELECT count(*) FROM scores") == 2

    path.rename(path.with_name("rsi_third_qa_pairs.json"))
    _run(root, RubricVersion2())

    assert _scored_details(root)[-1] == ("rubric/2", 2)
    assert query(root, "SELECT scorer, count(*) FROM scores GROUP BY scorer ORDER BY scorer") == [
        ("rubric/1", 2),
        ("rubric/2", 2),
    ]
    again = query(root, "SELECT pair_hash, score, subscores FROM scores WHERE scorer = 'rubric/2'")
    assert sorted(again) == sorted(first)  # same rubric, same judgement, new key
