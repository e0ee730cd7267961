"""The agent's non-Q&A files: ``status.txt`` (progress) and ``ALL_SESSIONS_COMPLETE.txt``
(the completion signal that corpus-level stages subscribe to)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from daemon.core.numbers import MAX_SESSION, bounded_int
from daemon.ingest.layout import STATUS_FILE

_FIELDS = {
    "sessions": re.compile(r"sessions?\s+complete[d]?\s*:\s*([0-9]+)\s*(?:/\s*([0-9]+))?", re.I),
    "current": re.compile(r"current\s+session\s*:\s*([0-9]+)", re.I),
    "updated": re.compile(r"last\s+updated\s*:\s*(.+)", re.I),
    "notes": re.compile(r"notes?\s*:\s*(.*)", re.I),
}

SIGNAL_ALL_COMPLETE = "all_sessions_complete"


def _number(match: re.Match[str], group: int, what: str, name: str, line: int) -> int:
    """A session count of ``status.txt``, bounded; InputError at its line and column."""
    position = f"line {line}, column {match.start(group) + 1}"
    return bounded_int(
        match.group(group), maximum=MAX_SESSION, what=what, name=name, position=position
    )


def parse_status(text: str, name: str = STATUS_FILE) -> dict[str, Any]:
    """The progress fields of a ``status.txt``; absent fields are None, the raw text kept.

    A count out of range raises InputError naming ``name``, line and column.
    """
    found: dict[str, Any] = {
        "sessions_complete": None,
        "sessions_total": None,
        "current_session": None,
        "last_updated": None,
        "notes": None,
    }
    # Lines end at "\n" only, as editors count them (splitlines would also split on
    # form feeds and U+2028, and the line numbers would not match).
    for number, line in enumerate(text.split("\n"), start=1):
        if match := _FIELDS["sessions"].search(line):
            found["sessions_complete"] = _number(match, 1, "sessions complete", name, number)
            found["sessions_total"] = (
                _number(match, 2, "sessions in all", name, number) if match.group(2) else None
            )
        elif match := _FIELDS["current"].search(line):
            found["current_session"] = _number(match, 1, "current session", name, number)
        elif match := _FIELDS["updated"].search(line):
            found["last_updated"] = match.group(1).strip()
        elif match := _FIELDS["notes"].match(line.strip()):
            found["notes"] = match.group(1).strip() or None
    found["raw"] = text
    found["sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return found
