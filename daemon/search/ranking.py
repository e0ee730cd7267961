"""How a query is matched to pairs beyond the raw index lookup; used by ``Searcher``.

Each rule was measured on the retrieval sets built from other people's indicator docs
(``benchmarks/retrieval.py``, figures in BENCHMARKS.md):

- **closest text.** A pair is as close to a query as the closest of its question, its
  answer and the pair vector (their normalised sum). A query that is only a name
  ("Bollinger Bands") is far from a long answer and from the pair vector but near the
  question that names it; a description is near the answer. No new vector is needed:
  the question and answer vectors are stored already.
- **phrases.** Besides its words, the lexical side searches a query's adjacent words as
  FTS5 phrases, so a pair that says "relative strength index" outranks one that has the
  three words apart (BM25 gives a rare phrase a high weight).
- **stop words.** Function words ("the", "how", "is") are not searched alone, nor as a
  phrase of two of them ("is the"): they match most pairs, so BM25 weighs them near
  zero while FTS5 still scores every pair they match. Dropping them took lexical search
  from 17 ms to 9 ms p50 on 16,000 pairs (13 ms before phrases) at the same or better
  hit@1 on both sets. A phrase with one ("rate of") is kept.
- **fusion.** Reciprocal rank fusion of the dense and lexical rankings, k = 10: a pair
  ranked first by either side counts for more than with the usual 60.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from daemon.providers.embedders import Matrix, normalise_rows
from daemon.refine.corpus import text_vectors
from daemon.store import Store

RRF_K = 10  # Cormack et al. use 60; 10 weighs each side's first hits more (BENCHMARKS.md)
_WORD = re.compile(r"\w+")
# fmt: off
STOP_WORDS = frozenset({
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for",
    "from", "how", "i", "in", "is", "it", "me", "my", "of", "on", "or", "the", "this",
    "to", "use", "used", "using", "what", "when", "which", "with",
})
# fmt: on


def closest_distances(
    store: Store, model_id: str, rows: Sequence[dict[str, Any]], vector: Matrix
) -> list[float]:
    """Cosine distance from ``vector`` to the closest of each pair's question, answer and
    pair vector, from stored vectors (``rows`` as rows of the ``pairs`` table)."""
    if not rows:
        return []
    questions, answers = text_vectors(store, model_id, rows)
    pairs = normalise_rows(questions + answers)
    closest = np.maximum(np.maximum(questions @ vector, answers @ vector), pairs @ vector)
    return [round(1.0 - float(similarity), 4) for similarity in closest]


def match_terms(*texts: str) -> list[str]:
    """The words of each text but stop words, then its adjacent word pairs (as phrases)
    but pairs of two stop words, each once."""
    terms: list[str] = []
    for text in texts:
        words = [word.casefold() for word in _WORD.findall(text)]
        terms += [word for word in words if word not in STOP_WORDS]
        terms += [
            f"{a} {b}"
            for a, b in itertools.pairwise(words)
            if a not in STOP_WORDS or b not in STOP_WORDS
        ]
    return list(dict.fromkeys(terms))


def fts_match(terms: Iterable[str]) -> str:
    """An FTS5 query matching any of ``terms`` (words or phrases of ``\\w`` characters)."""
    return " OR ".join(f'"{term}"' for term in terms)


def fuse(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: each ranking gives an item 1 / (k + rank)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank + 1)
    return fused
