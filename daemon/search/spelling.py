"""Respelling query words the corpus never uses, before a lexical or hybrid search.

A misspelled name ("Avergae Directional Index", "Stochastic Osccillator") matches no
BM25 term, and a 6-layer model places it only roughly. Each query word of four letters
or more that no indexed pair contains is replaced by the corpus word at most one edit
away (two for words of eight letters or more; an edit is an insertion, a deletion, a
substitution or a swap of neighbours), the most frequent if several are. Measured on
the retrieval sets: hybrid hit@1 +0.03 and +0.015, misspelled names 0.78 -> 0.94 and
0.84 -> 0.93 (BENCHMARKS.md). Words in capitals are abbreviations and stay as typed.

The vocabulary is the words of the indexed pairs' questions (where the names are: as
good on the retrieval sets as questions and answers, and a fifth of the text to read),
kept per DB and process and grown with the index (removed pairs leave their words: a
word that matches nothing is harmless). It is built only when a query has a word the
FTS5 index does not know (porter stems, so "averaging" is known), so most searches
never pay for it: the first such search of a process reads every question (0.2 s for
16,000 pairs, 1.6 s for 100,000 on the shared 2-core machine); the daemon reads them at
start (:func:`prepare`), so the searches it serves never do. Candidates come from a
symmetric-delete table (each word and its one-letter deletions), so a lookup costs a
few dictionary probes, not a pass over the vocabulary.
"""

from __future__ import annotations

import re
import string
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from daemon.store import Store
from daemon.store import search as search_db

MIN_LETTERS = 4  # shorter words are abbreviations or stop words: too many neighbours
LONG_WORD = 8  # from this length on, two edits
_WORD = re.compile(r"\w+")
_ALPHA = re.compile(r"[^\W\d_]+")  # letters only: numbers and ids are never respelled
_SEPARATORS = str.maketrans(dict.fromkeys(string.punctuation + string.digits, " "))


class Vocabulary:
    """Words of the indexed pairs with their counts, and their one-letter deletions."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.pair_ids: set[int] = set()
        self._by_delete: dict[str, set[str]] = {}

    def add(self, questions: Iterable[tuple[int, str]]) -> None:
        """Count the words of these (pair id, question) rows, each pair once."""
        fresh = [(pid, question) for pid, question in questions if pid not in self.pair_ids]
        self.pair_ids.update(pid for pid, _ in fresh)
        text = " ".join(question for _, question in fresh).casefold()
        # str.translate and split, not a regex: 3x faster over a corpus's text.
        words = [
            word
            for word in text.translate(_SEPARATORS).split()
            if len(word) >= MIN_LETTERS - 1 and word.isalpha()
        ]
        new = set(words).difference(self.counts)
        self.counts.update(words)  # counted in C: a 100,000-pair corpus in seconds
        for word in new:
            for key in _deletes(word):
                self._by_delete.setdefault(key, set()).add(word)

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


_VOCABULARIES: dict[tuple[Path, int], Vocabulary] = {}  # by DB path and inode
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
        vocabulary = _grown(store, active)
        fixes = {word: vocabulary.closest(word) for word in unknown}

    def fix(match: re.Match[str]) -> str:
        return fixes.get(match.group(0).casefold()) or match.group(0)

    return _WORD.sub(fix, query)


def prepare(store: Store, active: set[int]) -> int:
    """Build (or grow) the vocabulary of ``store``'s DB now, so that no search waits for
    it (the daemon does this at start); returns its number of words."""
    with _LOCK:
        return len(_grown(store, active).counts)


def _grown(store: Store, active: set[int]) -> Vocabulary:
    """The DB's vocabulary with the questions of every pair in ``active`` (hold _LOCK)."""
    # A DB restored over the path is another file whose pair ids mean other pairs.
    key = (store.path, store.path.stat().st_ino)
    vocabulary = _VOCABULARIES.setdefault(key, Vocabulary())
    missing = sorted(active - vocabulary.pair_ids)
    for start in range(0, len(missing), 2000):
        vocabulary.add(search_db.questions_by_id(store.db, missing[start : start + 2000]))
    return vocabulary


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
