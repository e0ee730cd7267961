"""Respelling query words the corpus never uses (daemon.search.spelling): the vocabulary
of the indexed pairs, its symmetric-delete lookup, and the edit distance it checks with."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from daemon.search.spelling import Vocabulary, _edits


def _rows(*questions: str) -> list[tuple[int, str]]:
    return list(enumerate(questions))


def _reference(a: str, b: str) -> int:
    """Optimal string alignment distance, the textbook full table."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(
                d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def test_a_slip_of_one_letter_is_respelled_to_the_corpus_word() -> None:
    """A deletion, an insertion, a substitution or a swap of neighbours finds the word."""
    vocabulary = Vocabulary()
    vocabulary.add(_rows("The stochastic oscillator compares the close with the range."))
    for slip in ("stochatic", "stochasstic", "stochastik", "stochsatic"):
        assert vocabulary.closest(slip) == "stochastic", slip
    assert vocabulary.closest("ocsillator") == "oscillator"


def test_long_words_get_two_edits_and_short_ones_one() -> None:
    """Eight letters or more: two edits away is still found; a shorter word needs one."""
    vocabulary = Vocabulary()
    vocabulary.add(_rows("average range"))
    assert vocabulary.closest("avergae") == "average"  # one swap
    assert vocabulary.closest("averaaage") == "average"  # two insertions, nine letters
    assert vocabulary.closest("rnagee") is None  # a swap and an insertion, six letters


def test_the_most_frequent_neighbour_wins_and_a_far_word_has_none() -> None:
    """Two corpus words one edit away: the one the corpus uses more; nothing near: None."""
    vocabulary = Vocabulary()
    vocabulary.add(_rows("trend trend trend", "tread"))
    assert vocabulary.closest("treud") == "trend"
    assert vocabulary.closest("volatility") is None


def test_each_pair_is_counted_once() -> None:
    """Adding the same pair again (the index grew around it) changes no count."""
    vocabulary = Vocabulary()
    rows = _rows("momentum momentum")
    vocabulary.add(rows)
    vocabulary.add(rows)
    assert vocabulary.counts["momentum"] == 2


@given(st.text("abcd", max_size=7), st.text("abcd", max_size=7), st.integers(0, 3))
def test_the_bounded_distance_agrees_with_the_full_table(a: str, b: str, limit: int) -> None:
    """Within the limit the distance is exact; past it, only "past the limit" is said."""
    full = _reference(a, b)
    bounded = _edits(a, b, limit)
    assert bounded == full if full <= limit else bounded > limit
