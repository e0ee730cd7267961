"""Embedding providers: one protocol, implementations selected through ``EMBEDDERS``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from daemon.config import Config
from daemon.errors import ConfigError
from daemon.validation import normalise

Matrix = NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    #: Identifies the vectors in the cache: provider, model and dimension.
    model_id: str
    dimension: int

    def embed_documents(self, texts: Sequence[str]) -> Matrix: ...

    def embed_query(self, text: str) -> Matrix: ...

    def embed_queries(self, texts: Sequence[str]) -> Matrix: ...


def text_hash(text: str) -> str:
    """Cache key of a text: the same text is never embedded twice per model."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def normalise_rows(matrix: Matrix) -> Matrix:
    """Unit-length rows (cosine similarity becomes a dot product)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: Matrix = (matrix / norms).astype(np.float32)
    return normalised


def _local(config: Config) -> Embedder:
    from daemon.embedders.local import LocalEmbedder

    settings = config.embeddings
    return LocalEmbedder(
        settings.local_model,
        settings.batch_size,
        precision=settings.local_precision,
        state_dir=config.state_dir,
    )


def prepare_local_model(config: Config) -> Path | None:
    """For ``inboxd init``: the verified folder of the local model, exported first when
    there is none (None: the configured provider is not the local one)."""
    if config.embeddings.provider != "local":
        return None
    from daemon.embedders import export_onnx, model_files
    from daemon.logs import get_logger

    settings = config.embeddings
    dirs = model_files.models_dirs(config.state_dir)
    files = export_onnx.ensure_exported(
        settings.local_model, dirs, settings.local_precision, get_logger()
    )
    return files.folder


def _gemini(config: Config) -> Embedder:
    from daemon.embedders.gemini import GeminiEmbedder

    return GeminiEmbedder(config)


EMBEDDERS: dict[str, Callable[[Config], Embedder]] = {"local": _local, "gemini": _gemini}


def make_embedder(config: Config) -> Embedder:
    """The embedder the config names."""
    factory = EMBEDDERS.get(config.embeddings.provider)
    if factory is None:
        raise ConfigError(
            f"embeddings.provider: {config.embeddings.provider!r} is not available here "
            f"(choose from {', '.join(sorted(EMBEDDERS))})"
        )
    return factory(config)
