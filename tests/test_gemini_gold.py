"""The judge's agreement with the shipped gold set, reported by a function."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gemini_fake import FakeGemini
from gemini_helpers import gemini_config, open_store

from daemon.gemini.gold import agreement, load_gold
from daemon.gemini.judge import JudgeScorer
from daemon.providers.scorers.rubric import RubricScorer

GOLD = Path(__file__).parent / "data" / "judge_gold.jsonl"


def careful_model(prompt: str, schema: Any) -> str:
    """A stand-in for a model that grades the answer inside the markers on substance."""
    answer = prompt.split("ANSWER:\n", 1)[1].rsplit("\nPAIR-", 1)[0]
    substance = len(re.findall(r"\d", answer)) >= 2 and len(answer.split()) >= 25
    injected = "ignore previous instructions" in answer.lower()
    good = substance and not injected
    verdict = {
        "accuracy": 4 if good else 2,
        "completeness": 4 if good else 1,
        "specificity": 5 if good else 1,
        "clarity": 4 if good else 2,
        "overall": 86 if good else 25,
        "issues": [] if good else ["vague or not an answer"],
        "rationale": "graded on substance",
    }
    return json.dumps(verdict)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGemini]:
    with FakeGemini(responder=careful_model) as server:
        monkeypatch.setenv("GEMINI_API_KEY", server.api_key)
        monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
        yield server


def test_gold_set_is_balanced_and_well_formed() -> None:
    """The shipped gold set has good and poor pairs, each with an id and text."""
    gold = load_gold(GOLD)
    assert {g["verdict"] for g in gold} == {"good", "poor"}
    assert len({g["id"] for g in gold}) == len(gold) >= 10


def test_judge_agreement_with_the_gold_set_is_reported(fake: FakeGemini, tmp_path: Path) -> None:
    """agreement() runs the judge over the gold set and reports agreed/answered and the
    misses; a careful model agrees on every pair, the injected one included."""
    config = gemini_config(tmp_path, fake, mode="interactive")
    open_store(config)
    report = agreement(JudgeScorer(config), load_gold(GOLD))
    assert report["answered"] == report["pairs"] == 12
    assert report["agreement"] == 1.0 and report["misses"] == []
    assert report["scorer"].startswith("gemini-judge/")


def test_the_local_rubric_can_be_measured_on_the_same_gold_set() -> None:
    """The same function reports the local rubric's agreement, as a baseline to compare."""
    report = agreement(RubricScorer(), load_gold(GOLD))
    assert report["answered"] == 12
    assert report["agreement"] >= 0.75, report["misses"]
