"""The report doctor gives: one :class:`Check` a line, ok, FAIL (with the fix) or skip."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum

from daemon.core.errors import InboxdError


class Outcome(StrEnum):
    OK = "ok"
    FAIL = "FAIL"
    SKIP = "skip"  # a check it depends on failed; that failure says what to fix


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it went, and what to do."""

    name: str
    outcome: Outcome
    detail: str
    fix: str | None = None

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAIL


def ok(name: str, detail: str) -> Check:
    return Check(name, Outcome.OK, detail)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Outcome.FAIL, detail, fix)


def skip(name: str, why: str) -> Check:
    return Check(name, Outcome.SKIP, why)


def guarded(check: Callable[[], Check], name: str) -> Check:
    """Run one check; an unexpected error is that check's FAIL, not doctor's crash."""
    try:
        return check()
    except (OSError, sqlite3.Error, InboxdError) as exc:
        return fail(
            name, f"the check itself failed: {exc}", "see the message; report it if unclear"
        )


def render(checks: list[Check]) -> str:
    """The report for a person: one line a check, the fix indented under a failure."""
    width = max(len(c.name) for c in checks)
    lines = []
    for check in checks:
        lines.append(f"{check.outcome.value:<4}  {check.name:<{width}}  {check.detail}")
        if check.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {check.fix}")
    failed = sum(c.failed for c in checks)
    lines.append(f"{failed} check(s) failed" if failed else "all checks passed")
    return "\n".join(lines)


def to_json(checks: list[Check]) -> str:
    """The report as JSON: ``ok`` and every check."""
    return json.dumps(
        {
            "ok": not any(c.failed for c in checks),
            "checks": [{**asdict(c), "outcome": c.outcome.value} for c in checks],
        },
        indent=2,
    )
