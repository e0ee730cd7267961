"""Embedding providers: one protocol (``base``), implementations chosen by
``[embeddings] provider`` through :data:`EMBEDDERS`."""

from __future__ import annotations

from daemon.core.config import Config
from daemon.providers.embedders.base import Embedder, Matrix, normalise_rows
from daemon.providers.registry import Registry

__all__ = ["EMBEDDERS", "Embedder", "Matrix", "make_embedder", "normalise_rows"]

EMBEDDERS: Registry[Embedder] = Registry(
    "embeddings.provider",
    {
        "local": "daemon.providers.embedders.local:from_config",
        "gemini": "daemon.gemini.embedder:from_config",
    },
)


def make_embedder(config: Config) -> Embedder:
    """The embedder the config names."""
    return EMBEDDERS.build(config.embeddings.provider, config)
