"""A small refined root for the RAG hand-off tests (export, eval, ask): realistic pairs
from the benchmark generator for ten catalog indicators, plus planted near-copies
(another agent re-delivering pairs with other case and punctuation) and junk (questions
about one indicator, filed under another, with placeholder answers).

Refining it (real stages, real model) is the slow part, so a session builds it once
(conftest's ``rag_template``) and each test module takes its own copy (``copy_of``): the
modules that write into their root (exports, Chroma, query files) cannot see each other."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from conftest import query

from benchmarks.corpus import _peers, envelope, file_path, pairs_for
from daemon.core.catalog import Indicator, load_catalog
from daemon.core.config import Config, load_config
from daemon.runtime.service import Service
from daemon.stages.corpus_run import run_corpus

INDICATORS = (
    "rsi",
    "macd",
    "sma",
    "bollinger_bands",
    "mvrv_ratio",
    "funding_rate",
    "open_interest",
    "atr",
    "obv",
    "sopr",
)
COPIED = ("rsi", "macd", "bollinger_bands")  # each pair re-delivered three more times
JUNK_FOR = {"mvrv_ratio": "obv", "sopr": "atr", "funding_rate": "sma"}  # about -> filed under
PAIRS_EACH = 5
PLACEHOLDERS = (
    "TODO: explain {what}.",
    "TBD - fill this in later ({what}).",
    "Placeholder: {what}.",
)


def indicator(indicator_id: str) -> Indicator:
    found = load_catalog().resolve(indicator_id)
    assert found is not None, indicator_id
    return found


def _copies(pair: dict[str, Any]) -> list[dict[str, Any]]:
    q, a = pair["question"], pair["answer"]
    return [
        {"question": q.lower(), "answer": a},
        {"question": q.upper(), "answer": a.lower()},
        {"question": q.replace("?", " ??"), "answer": a.replace(".", " .")},
    ]


def _junk(about: Indicator) -> list[dict[str, Any]]:
    questions = (
        f"What does the {about.name} measure?",
        f"How is the {about.name} calculated?",
        f"How do traders read the {about.name} in crypto markets?",
        f"What are the limitations of the {about.name}?",
    )
    return [
        {"question": question, "answer": template.format(what=question.rstrip("?").lower())}
        for question in questions
        for template in PLACEHOLDERS[:2]
    ]


def settings(root: Path) -> Config:
    return load_config(root, overrides={"watch": {"settle_seconds": 0.0, "poll_seconds": 0.01}})


def build(root: Path, *, copies: bool = True, junk: bool = True) -> Config:
    """Write the corpus under ``root`` and refine it with the real stages and model."""
    for name in INDICATORS:
        ind = indicator(name)
        pairs = pairs_for(ind, PAIRS_EACH, seed=7, peers=_peers(ind))
        path = file_path(root, ind, agent="droid")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(envelope(ind, pairs))
        if copies and name in COPIED:
            again = [c for p in pairs for c in _copies(p)]
            copy_path = file_path(root, ind, agent="mirror")
            copy_path.parent.mkdir(parents=True, exist_ok=True)
            copy_path.write_bytes(envelope(ind, again))
    if junk:
        for about, filed_under in JUNK_FOR.items():
            target = indicator(filed_under)
            path = file_path(root, target, suffix="extra", agent="droid")
            path.write_bytes(envelope(target, _junk(indicator(about))))
    config = settings(root)
    service = Service(config)
    service.start(watch=False)
    try:
        service.run_once()
        run_corpus(service.worker_services(), 1_800_000_000.0)
    finally:
        service.stop()
    states = {state for (state,) in query(root, "SELECT state FROM batches")}
    assert states == {"indexed"}, states
    return config


def copy_of(template: Path, target: Path) -> Path:
    """A private copy of a built root at ``target`` (absent or empty): the DB, the index,
    the archive and the export's relative ``state/export`` link, modification times kept
    (so a rescan finds every file unchanged). Only the first export's manifest and README
    still name the template's root; the next export names the copy's."""
    shutil.copytree(template, target, symlinks=True, dirs_exist_ok=True)
    return target


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path
