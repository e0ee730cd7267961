"""Optional enhancement: low-scored pairs rewritten, the original kept, the rewrite
embedded and judged again, and accepted only when it scores higher."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gemini_fake import FakeGemini
from gemini_helpers import context, gemini_config, open_store, sample_pairs, seed_pairs

from daemon.core.textid import text_hash
from daemon.gemini.hooks import GeminiWork


def model_for(rewrite_overall: int) -> Any:
    """Grades originals 40 and rewrites ``rewrite_overall``; rewrites on request."""

    def respond(prompt: str, schema: Any) -> str:
        props = (schema or {}).get("properties", {})
        if "question" in props:  # the rewrite schema
            return json.dumps(
                {"question": "What does RSI measure?", "answer": "REWRITTEN: RSI = 100 - ..."}
            )
        overall = rewrite_overall if "REWRITTEN" in prompt else 40
        verdict = dict.fromkeys(("accuracy", "completeness", "specificity", "clarity"), 3)
        return json.dumps({**verdict, "overall": overall, "issues": ["thin"], "rationale": "r"})

    return respond


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        monkeypatch.setenv("GEMINI_API_KEY", server.api_key)
        monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
        yield server


@pytest.mark.parametrize(("rewrite_overall", "accepted"), [(90, 1), (30, 0)])
def test_rewrite_is_kept_beside_the_original_and_accepted_only_if_better(
    fake: FakeGemini, tmp_path: Path, rewrite_overall: int, accepted: int
) -> None:
    """A pair judged below enhance_below is rewritten; the original row is untouched, the
    rewrite is judged again, and only a better rewrite is accepted (and embedded)."""
    fake.responder = model_for(rewrite_overall)
    config = gemini_config(
        tmp_path, fake, mode="interactive", enhance=True, enhance_below=60, embeddings=True
    )
    store = open_store(config)
    (pair_hash,) = seed_pairs(store, sample_pairs(1))
    before = store.db.execute("SELECT question, answer FROM pairs").fetchall()
    work = GeminiWork(context(config, store))
    work.after_corpus_run(time.time())
    row = store.db.execute(
        "SELECT pair_hash, original_score, new_score, accepted, answer FROM gemini_enhancements"
    ).fetchone()
    assert row == (pair_hash, 40.0, float(rewrite_overall), accepted, "REWRITTEN: RSI = 100 - ...")
    assert store.db.execute("SELECT question, answer FROM pairs").fetchall() == before
    embedded = store.db.execute(
        "SELECT count(*) FROM embeddings WHERE text_hash = ?", [text_hash(row[4])]
    ).fetchone()[0]
    assert embedded == accepted
    stages = {r[0] for r in store.db.execute("SELECT stage FROM gemini_calls")}
    assert {"judge", "enhance"} <= stages
    asked = len(fake.requests_to("generateContent"))
    work.after_corpus_run(time.time())  # a second run does not rewrite it again
    assert store.db.execute("SELECT count(*) FROM gemini_enhancements").fetchone()[0] == 1
    assert len(fake.requests_to("generateContent")) == asked


def test_enhancement_is_off_by_default(fake: FakeGemini, tmp_path: Path) -> None:
    """With the default config no pair is rewritten, however low it scores."""
    fake.responder = model_for(90)
    config = gemini_config(tmp_path, fake, mode="interactive")
    assert config.gemini.enhance is False
    store = open_store(config)
    seed_pairs(store, sample_pairs(2))
    work = GeminiWork(context(config, store))
    work.after_corpus_run(time.time())
    assert store.db.execute("SELECT count(*) FROM gemini_enhancements").fetchone()[0] == 0
    assert store.db.execute("SELECT count(*) FROM scores").fetchone()[0] == 2
