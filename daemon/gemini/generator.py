"""Gemini as the answer generator of ``inboxd ask`` (``[rag] generator = "gemini"``): one
interactive call per question, under the same budget and cost ledger as the judge."""

from __future__ import annotations

from typing import Any

from daemon.core.config import Config
from daemon.gemini import client as gc
from daemon.gemini.costs import Ledger, cost_usd
from daemon.gemini.judge import paid_generate


class GeminiGenerator:
    """Answers with ``[gemini] judge_model`` (a flash model), at most ``[rag] max_tokens``."""

    def __init__(self, config: Config, client: Any = None) -> None:
        self.config = config
        self.model = config.gemini.judge_model
        self.name = f"gemini/{self.model}"
        cost_usd(config.gemini, self.model, 0, 0, batch=False)  # no price: fail at start-up
        self.ledger = Ledger(config.db_path, config.gemini)
        self._client = client

    def generate(self, system: str, user: str) -> str:
        from google.genai import types

        if self._client is None:
            self._client = gc.make_client(self.config.gemini)
        client = self._client
        settings = types.GenerateContentConfig(
            system_instruction=system,
            temperature=0.2,
            max_output_tokens=self.config.rag.max_tokens,
        )
        response = paid_generate(
            self.ledger,
            self.config,
            stage="ask",
            model=self.model,
            estimate=(gc.ceil_tokens(system + user), self.config.rag.max_tokens),
            request=lambda: client.models.generate_content(
                model=self.model, contents=user, config=settings
            ),
        )
        return str(getattr(response, "text", "") or "")


def from_config(config: Config) -> GeminiGenerator:
    """The registry's factory for ``[rag] generator = "gemini"``."""
    return GeminiGenerator(config)
