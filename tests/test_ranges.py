"""Session numbers as people type them: ``2-17, 19`` parsed, and folded back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.core import ranges
from daemon.core.errors import InboxdError


@given(st.sets(st.integers(min_value=0, max_value=500), max_size=60))
def test_folded_numbers_parse_back_to_the_same_set(numbers: set[int]) -> None:
    """fold() writes runs that parse() reads back as exactly the numbers folded."""
    text = ranges.fold(numbers)
    assert ranges.parse(text) == sorted(numbers) if numbers else text == ""


def test_fold_writes_runs_the_way_people_type_them() -> None:
    """Consecutive numbers become a range, lone ones stay single."""
    assert ranges.fold([21, 2, 3, 4, 19, 44, *range(22, 44)]) == "2-4, 19, 21-44"


def test_parse_takes_spaces_repeats_and_overlaps() -> None:
    """Parts may be spaced, repeated and overlapping; each number comes back once."""
    assert ranges.parse(" 9, 2-4 ,3-5,9") == [2, 3, 4, 5, 9]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("2-x", "is not a number or a range"),
        ("-3", "is not a number or a range"),
        ("2--4", "is not a number or a range"),
        ("", "is not a number or a range"),
        ("５", "is not a number or a range"),  # a full-width digit is not ASCII
        ("9-2", "runs backwards"),
        ("2-10001", "numbers go from 0 to 10,000"),
        ("1" * 5000, "numbers go from 0 to 10,000"),
    ],
)
def test_parse_refuses_what_is_not_a_range_of_sessions(spec: str, says: str) -> None:
    """Garbage, a backwards range and numbers past the largest session are refused with
    the part named, before any huge range is built."""
    with pytest.raises(InboxdError, match=says):
        ranges.parse(spec)
