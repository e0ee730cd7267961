"""Numbers read from agent text (file and folder names, ``status.txt``, assignments).

They are parsed only within a range, so an absurd value is an error at its position for
the agent, never an ``OverflowError`` at an SQL bind or a ``ValueError`` from ``int()``
(which refuses more than 4,300 digits).
"""

from __future__ import annotations

from daemon.core.errors import InputError

#: The largest session number anything accepts (a pair's field, ``session_NN/``,
#: ``session-NN-assignment.md``, ``status.txt``); the plan has 44.
MAX_SESSION = 10_000
#: The largest pair count an assignment may ask for one indicator.
MAX_PAIRS_ASKED = 100_000

_SHOWN_DIGITS = 24


def shown(digits: str) -> str:
    """A number as an error message shows it: whole if short, else its start and length."""
    if len(digits) <= _SHOWN_DIGITS:
        return digits
    return f"{digits[:12]}... ({len(digits):,} digits)"


def bounded_int(digits: str, *, maximum: int, what: str, name: str, position: str) -> int:
    """``int(digits)`` for ASCII digits from 0 to ``maximum``; else InputError naming
    ``what``, the file ``name`` and the ``position``."""
    if not (digits.isascii() and digits.isdigit()):
        raise InputError(name, f"{what} {shown(digits)!r} is not a number", position)
    # Length first: int() of thousands of digits is slow, and refused past 4,300
    # (leading zeros count too: "000...0" is zero).
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(maximum)) or int(significant) > maximum:
        raise InputError(
            name, f"{what} {shown(digits)} is out of range (0 to {maximum:,})", position
        )
    return int(significant)
