"""One ONNX Runtime session of an exported model: tokenise, run, mean-pool and
L2-normalise, as sentence-transformers does. Shared by the local embedder and the
export's own verification."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from daemon.core.errors import ConfigError
from daemon.providers.embedders.base import Matrix, normalise_rows
from daemon.providers.embedders.model_files import ModelFiles, Precision


class OnnxEncoder:
    """One loaded model: its tokenizer and an ONNX Runtime session."""

    def __init__(self, files: ModelFiles, precision: Precision) -> None:
        try:
            # Lazy: onnxruntime and tokenizers load native libraries (~0.3 s); only a
            # process that embeds locally needs them (status, doctor, a Gemini root do not).
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
