"""Sets of session numbers written as runs, the way people type them: ``2-17, 19``."""

from __future__ import annotations

from collections.abc import Iterable

from daemon.core.errors import InboxdError
from daemon.core.numbers import MAX_SESSION


def parse(spec: str, maximum: int = MAX_SESSION) -> list[int]:
    """``2-5,9`` -> [2, 3, 4, 5, 9] (sorted, each once). A part that is not a number or
    a range, a range that runs backwards, or a number above ``maximum`` raises
    InboxdError naming the part."""
    numbers: set[int] = set()
    for part in spec.split(","):
        text = part.strip()
        low, _, high = text.partition("-")
        if not all(n.isascii() and n.isdigit() for n in ((low, high) if high else (low,))):
            raise InboxdError(f"{text!r} is not a number or a range")
        # Compared as text lengths first: a thousand-digit number is refused, not built.
        if max(len(low), len(high)) > len(str(maximum)):
            raise InboxdError(f"{text!r}: numbers go from 0 to {maximum:,}")
        first, last = int(low), int(high or low)
        if last > maximum:
            raise InboxdError(f"{text!r}: numbers go from 0 to {maximum:,}")
        if first > last:
            raise InboxdError(f"{text!r} runs backwards")
        numbers.update(range(first, last + 1))
    return sorted(numbers)


def fold(numbers: Iterable[int]) -> str:
    """The inverse of :func:`parse`: 2, 3, 4, 7, 9, 10 -> ``2-4, 7, 9-10``."""
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
