"""The embedder protocol and the vector helpers every embedder shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    #: Identifies the vectors in the cache: provider, model and dimension.
    model_id: str
    dimension: int

    def embed_documents(self, texts: Sequence[str]) -> Matrix: ...

    def embed_query(self, text: str) -> Matrix: ...

    def embed_queries(self, texts: Sequence[str]) -> Matrix: ...


def normalise_rows(matrix: Matrix) -> Matrix:
    """Unit-length rows (cosine similarity becomes a dot product)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: Matrix = (matrix / norms).astype(np.float32)
    return normalised
