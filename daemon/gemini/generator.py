"""Gemini as the answer generator of ``inboxd ask`` (``[rag] generator = "gemini"``): one
interactive call per question, under the same budget and cost ledger as the judge."""

from __future__ import annotations

from daemon.core.config import Config
from daemon.gemini import client as gc
from daemon.gemini.costs import Ledger, cost_usd
from daemon.gemini.judge import paid_generate
from daemon.store import Store


class GeminiGenerator:
    """Answers with ``[gemini] judge_model`` (a flash model), at most ``[rag] max_tokens``."""

    def __init__(
        self, config: Config, client: gc.Client | None = None, *, store: Store | None = None
    ) -> None:
        self.config = config
        self.model = config.gemini.judge_model
        self.name = f"gemini/{self.model}"
        cost_usd(config.gemini, self.model, 0, 0, batch=False)  # no price: fail at start-up
        self.ledger = Ledger(config, store)
        self._client = client

    def generate(self, system: str, user: str) -> str:
        if self._client is None:
            self._client = gc.make_client(self.config.gemini)
        client = self._client
        prompt = gc.Prompt(
            system=system, user=user, temperature=0.2, max_output_tokens=self.config.rag.max_tokens
        )
        reply = paid_generate(
            self.ledger,
            self.config,
            stage="ask",
            model=self.model,
            estimate=(gc.ceil_tokens(system + user), self.config.rag.max_tokens),
            request=lambda: gc.generate(client, self.config.gemini, self.model, prompt, what="ask"),
        )
        return reply.text


def from_config(config: Config, store: Store | None = None) -> GeminiGenerator:
    """The registry's factory for ``[rag] generator = "gemini"``."""
    return GeminiGenerator(config, store=store)
