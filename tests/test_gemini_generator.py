"""``[rag] generator = "gemini"``: ``inboxd ask`` answers through the real google-genai
client (against the loopback fake), priced in the same ledger and under the same budget
as the judge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gemini_fake import FakeGemini
from gemini_helpers import gemini_config, open_store

from daemon.core.errors import InboxdError
from daemon.gemini.costs import spend_summary
from daemon.providers.generators import make_generator


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGemini]:
    with FakeGemini(responder=lambda prompt, schema: "RSI above 70 is overbought [12].") as server:
        monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
        monkeypatch.setenv("GEMINI_API_KEY", server.api_key)
        yield server


def test_gemini_answers_ask_and_the_call_is_priced(fake: FakeGemini, tmp_path: Path) -> None:
    """`ask` with the Gemini generator answers from the fake and records the call's cost."""
    config = gemini_config(tmp_path, fake)
    store = open_store(config)
    try:
        generator = make_generator(config, "gemini")
        answer = generator.generate("Answer from the sources only.", "Sources: [12] RSI ...")
        assert answer == "RSI above 70 is overbought [12]."
        assert generator.name == f"gemini/{config.gemini.judge_model}"
        body: dict[str, Any] = fake.requests_to("generateContent")[0].body
        assert body["systemInstruction"]["parts"][0]["text"] == "Answer from the sources only."
        (row,) = spend_summary(store.db, config)["by_stage"]
        assert (row["stage"], row["mode"], row["calls"]) == ("ask", "interactive", 1)
        assert row["cost_usd"] > 0
    finally:
        store.close()


def test_gemini_ask_stops_at_the_budget_before_calling(fake: FakeGemini, tmp_path: Path) -> None:
    """With no budget left, the Gemini generator refuses before any request is sent."""
    config = gemini_config(tmp_path, fake, budget_usd=0.0)
    store = open_store(config)
    try:
        generator = make_generator(config, "gemini")
        with pytest.raises(InboxdError, match="budget"):
            generator.generate("system", "user")
        assert fake.requests_to("generateContent") == []
    finally:
        store.close()
