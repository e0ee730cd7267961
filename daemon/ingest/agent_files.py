"""The agent's non-Q&A files: ``status.txt`` (progress) and ``ALL_SESSIONS_COMPLETE.txt``
(the completion signal that corpus-level stages subscribe to)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

_FIELDS = {
    "sessions": re.compile(r"sessions?\s+complete[d]?\s*:\s*(\d+)\s*(?:/\s*(\d+))?", re.I),
    "current": re.compile(r"current\s+session\s*:\s*(\d+)", re.I),
    "updated": re.compile(r"last\s+updated\s*:\s*(.+)", re.I),
    "notes": re.compile(r"notes?\s*:\s*(.*)", re.I),
}

SIGNAL_ALL_COMPLETE = "all_sessions_complete"


def parse_status(text: str) -> dict[str, Any]:
    """The progress fields of a ``status.txt``; absent fields are None, the raw text kept."""
    found: dict[str, Any] = {
        "sessions_complete": None,
        "sessions_total": None,
        "current_session": None,
        "last_updated": None,
        "notes": None,
    }
    for line in text.splitlines():
        if match := _FIELDS["sessions"].search(line):
            found["sessions_complete"] = int(match.group(1))
            found["sessions_total"] = int(match.group(2)) if match.group(2) else None
        elif match := _FIELDS["current"].search(line):
            found["current_session"] = int(match.group(1))
        elif match := _FIELDS["updated"].search(line):
            found["last_updated"] = match.group(1).strip()
        elif match := _FIELDS["notes"].match(line.strip()):
            found["notes"] = match.group(1).strip() or None
    found["raw"] = text
    found["sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return found
