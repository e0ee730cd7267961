"""Gemini embeddings (``gemini-embedding-001`` by default) through ``batchEmbedContents``,
at most 100 texts a call (the server's cap; the SDK does not split). Documents are
embedded as RETRIEVAL_DOCUMENT and queries as RETRIEVAL_QUERY; vectors below 3072
dimensions come back unnormalised, so every row is L2-normalised here.

Embeddings are always interactive, in batch mode too: the per-batch pipeline needs the
vectors before de-duplication, and the embedding Batch API is experimental in the SDK.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from daemon.core.config import Config
from daemon.gemini import client as gc
from daemon.gemini.costs import Ledger, cost_usd
from daemon.providers.embedders.base import Matrix, normalise_rows

MAX_TEXTS_PER_CALL = 100


class GeminiEmbedder:
    """Vectors from the Gemini API; each call is priced and recorded, and refused when it
    would pass the budget."""

    def __init__(
        self, config: Config, client: Any = None, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        g = config.gemini
        self.config = g
        self.model = g.embedding_model
        self.dimension = g.output_dimensionality
        self.model_id = f"gemini/{g.embedding_model}@{g.output_dimensionality}"
        cost_usd(g, self.model, 0, 0, batch=False)  # no price: fail at start-up, not mid-run
        self.client = client if client is not None else gc.make_client(g)
        self.ledger = Ledger(config.db_path, g)
        self.sleep = sleep

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        return self._embed(list(texts), "RETRIEVAL_DOCUMENT")

    def embed_query(self, text: str) -> Matrix:
        vector: Matrix = self.embed_queries([text])[0]
        return vector

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        return self._embed(list(texts), "RETRIEVAL_QUERY")

    def _embed(self, texts: list[str], task_type: str) -> Matrix:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        rows: list[list[float]] = []
        for start in range(0, len(texts), MAX_TEXTS_PER_CALL):
            rows += self._call(texts[start : start + MAX_TEXTS_PER_CALL], task_type)
        return normalise_rows(np.asarray(rows, dtype=np.float32))

    def _call(self, texts: list[str], task_type: str) -> list[list[float]]:
        from google.genai import types

        estimate = sum(gc.ceil_tokens(t) for t in texts)
        self.ledger.check("embed", cost_usd(self.config, self.model, estimate, 0, batch=False))
        # One Content per text: for multimodal embedding models the SDK would otherwise
        # merge a list of strings into one content and return a single vector (#2523).
        contents = [types.Content(parts=[types.Part(text=t)]) for t in texts]
        response = gc.call(
            lambda: self.client.models.embed_content(
                model=self.model,
                contents=contents,
                config=types.EmbedContentConfig(
                    task_type=task_type, output_dimensionality=self.dimension
                ),
            ),
            self.config,
            what="embed",
            sleep=self.sleep,
        )
        embeddings = response.embeddings or []
        if len(embeddings) != len(texts):
            from daemon.core.errors import TransientError

            raise TransientError(
                f"embed: asked for {len(texts)} vectors, the API returned {len(embeddings)}"
            )
        usage = getattr(response, "usage_metadata", None)
        tokens = getattr(usage, "prompt_token_count", None)
        self.ledger.record(
            stage="embed",
            model=self.model,
            mode="interactive",
            requests=len(texts),
            input_tokens=int(tokens) if tokens is not None else estimate,
            output_tokens=0,
            estimated=tokens is None,
            cost=cost_usd(
                self.config,
                self.model,
                int(tokens) if tokens is not None else estimate,
                0,
                batch=False,
            ),
        )
        return [list(e.values or []) for e in embeddings]


def from_config(config: Config) -> GeminiEmbedder:
    """The registry's factory for the ``gemini`` embedder."""
    return GeminiEmbedder(config)
