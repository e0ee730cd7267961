"""Respelling query words the corpus never uses, for the lexical side of a search.

A misspelled name ("Avergae Directional Index", "Stochastic Osccillator") matches no
BM25 term, and a 6-layer model places it only roughly. Each query word of four letters
or more that no indexed pair contains is replaced by the corpus word at most one edit
away (two for words of eight letters or more; an edit is an insertion, a deletion, a
substitution or a swap of neighbours), the most frequent if several are. Measured on
the retrieval sets: hit@1 +0.023 and +0.015 (BENCHMARKS.md).

The vocabulary is the words of the indexed pairs' questions and answers, kept per DB
and process and grown with the index (removed pairs leave their words: a word that
matches nothing is harmless). It is built only when a query has a word the FTS5 index
does not know, so most searches never pay for it. Candidates come from a
symmetric-delete table (each word and its one-letter deletions), so a lookup costs a
few dictionary probes, not a pass over the vocabulary.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from daemon.store import Store
from daemon.store import corpus as q
from daemon.store import search as search_db

MIN_LETTERS = 4  # shorter words are abbreviations or stop words: too many neighbours
LONG_WORD = 8  # from this length on, two edits
_WORD = re.compile(r"\w+")
_ALPHA = re.compile(r"[^\W\d_]+")  # letters only: numbers and ids are never respelled


class Vocabulary:
    """Words of the indexed pairs with their counts, and their one-letter deletions."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.pair_ids: set[int] = set()
        self._by_delete: dict[str, set[str]] = {}

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        """Count the words of these ``pairs`` rows (each pair once)."""
        for row in rows:
            if row["id"] in self.pair_ids:
                continue
            self.pair_ids.add(row["id"])
            for word in _ALPHA.findall(f"{row['question']} {row['answer']}".casefold()):
                if len(word) < MIN_LETTERS - 1:
                    continue
                if word not in self.counts:
                    for key in _deletes(word):
                        self._by_delete.setdefault(key, set()).add(word)
                self.counts[word] += 1

    def closest(self, word: str) -> str | None:
        """The most frequent vocabulary word within the edit limit of ``word`` (None: none)."""
        limit = 2 if len(word) >= LONG_WORD else 1
        keys = set(_deletes(word))
        if limit == 2:
            keys |= {k for key in keys for k in _deletes(key)}
        candidates = {c for key in keys for c in self._by_delete.get(key, ())}
        near = [c for c in candidates if _edits(word, c, limit) <= limit]
        if not near:
            return None
        return max(near, key=lambda c: (self.counts[c], c))


_VOCABULARIES: dict[Path, Vocabulary] = {}
_LOCK = threading.Lock()


def respell(store: Store, active: set[int], query: str) -> str:
    """``query`` with each long word no indexed pair contains replaced by its closest
    corpus word (unchanged when every word is known or nothing is near)."""
    unknown = {
        word.casefold()
        for word in _WORD.findall(query)
        # An all-capitals word is an abbreviation (SMMA, LRMA): not a slip of the keyboard.
        if len(word) >= MIN_LETTERS and _ALPHA.fullmatch(word) and not word.isupper()
    }
    unknown -= search_db.known_words(store.db, sorted(unknown))
    if not unknown:
        return query
    with _LOCK:  # one vocabulary per DB, grown by whichever search needs it first
        vocabulary = _VOCABULARIES.setdefault(store.path, Vocabulary())
        missing = sorted(active - vocabulary.pair_ids)
        for start in range(0, len(missing), 2000):
            vocabulary.add(q.pairs_by_id(store.db, missing[start : start + 2000]))
        fixes = {word: vocabulary.closest(word) for word in unknown}

    def fix(match: re.Match[str]) -> str:
        return fixes.get(match.group(0).casefold()) or match.group(0)

    return _WORD.sub(fix, query)


def _deletes(word: str) -> Iterator[str]:
    """The word itself and each string one deleted letter away."""
    yield word
    for i in range(len(word)):
        yield word[:i] + word[i + 1 :]


def _edits(a: str, b: str, limit: int) -> int:
    """Edit distance with swaps of neighbours (optimal string alignment), or a number
    past ``limit`` as soon as it is certain to exceed it."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, before[j - 2] + 1)
            current.append(cost)
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return previous[-1]
