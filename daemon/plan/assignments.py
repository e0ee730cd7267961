"""Assignments as Markdown: what ``inboxd dispatch`` writes into ``inbox/<agent>/`` and
what it reads back, from its own files or from ones a person wrote.

The format is made for the agent to read and for a person to edit, so the parser asks
little of it: the session number comes from the file name (``session-NN-assignment.md``),
the title from the first ``#`` heading, and the indicators from the bullets under a
``## Indicators`` heading. A bullet names an indicator by id, name or alias; a gap-fill
bullet may add what is asked (``40 more pairs; types: calculation, signal; difficulties:
expert``). A title containing "gap fill" marks a follow-up assignment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from daemon.core.catalog import Catalog, Indicator, Session
from daemon.core.config_sections import CoverageConfig
from daemon.core.numbers import MAX_PAIRS_ASKED, bounded_int
from daemon.ingest.layout import COMPLETE_SIGNAL, FEEDBACK_DIR, STATUS_FILE

PLAN_FILE = "MASTER_EXECUTION_PLAN.md"
INDEX_FILE = "SESSION_INDEX.md"

KIND_PLAN = "plan"
KIND_GAP_FILL = "gap_fill"

# Agent-controlled text: every pattern here runs in linear time. A capture ends at the
# line's end and is stripped afterwards (a lazy ``(.+?)\s*$`` is quadratic on a line
# of spaces); a run of digits or spaces is entered only at its start (``(?<!...)``), so
# a search does not rescan the run from each of its characters.
_HEADING = re.compile(r"^#[ \t]+(.+)$", re.M)
_SESSION_PREFIX = re.compile(r"^session\s+\d+\s*[—–:-]\s*", re.I)
_SECTION = re.compile(r"^##\s+(.+)")
_BULLET = re.compile(r"^\s*[-*+]\s+(.+)")
_DASH = re.compile(r"(?<!\s)\s+[—–-]\s+")
_MORE_PAIRS = re.compile(r"(?<![0-9])([0-9]+)\s+more\s+pairs?", re.I)
_TYPES = re.compile(r"types?\s*:\s*([^;]+)", re.I)
_DIFFICULTIES = re.compile(r"difficult(?:y|ies)\s*:\s*([^;]+)", re.I)


@dataclass(frozen=True)
class Request:
    """What an assignment asks for one indicator (a gap-fill names only what is missing)."""

    indicator: str  # catalog id, or the name as written when the catalog lacks it
    pairs: int
    types: tuple[str, ...] = ()
    difficulties: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "indicator": self.indicator,
            "pairs": self.pairs,
            "types": list(self.types),
            "difficulties": list(self.difficulties),
        }


@dataclass(frozen=True)
class Assignment:
    """One session's assignment, as written or as read back."""

    session: int
    title: str
    kind: str
    requests: tuple[Request, ...]
    unknown: tuple[str, ...] = field(default=())  # bullets that name no catalog indicator

    @property
    def indicators(self) -> list[str]:
        return [request.indicator for request in self.requests]


def file_name(session: int) -> str:
    """``session-02-assignment.md``."""
    return f"session-{session:02d}-assignment.md"


def plan_assignment(session: Session, catalog: Catalog, coverage: CoverageConfig) -> Assignment:
    """The assignment of one catalog session: all its indicators, the full coverage."""
    requests = tuple(
        Request(i.id, coverage.target_pairs, coverage.question_types, coverage.difficulties)
        for i in catalog.indicators_for_session(session.number)
    )
    return Assignment(session.number, session.theme, KIND_PLAN, requests)


def _list(values: Sequence[str]) -> str:
    return ", ".join(values)


def render(assignment: Assignment, catalog: Catalog, coverage: CoverageConfig, agent: str) -> str:
    """The Markdown of an assignment file."""
    number = f"{assignment.session:02d}"
    lines = [f"# Session {number} — {assignment.title}", ""]
    if assignment.kind == KIND_GAP_FILL:
        lines += [
            "A follow-up: the pairs delivered so far leave these gaps. Deliver only what",
            "each indicator below asks for, in new files (earlier files stay as they are).",
            "",
        ]
    lines += [
        f"Deliver one file per indicator into `outbox/{agent}/`, named",
        f"`<indicator>_qa_pairs.json` (flat, or under `session_{number}/`).",
    ]
    if assignment.kind == KIND_PLAN:
        lines += [
            f"Each file: at least {coverage.target_pairs} question/answer pairs (aim for about"
            f" {coverage.target_pairs + 5}: near-duplicates are folded).",
            f"Question types to cover: {_list(coverage.question_types)}.",
            f"Difficulty levels to mix: {_list(coverage.difficulties)}.",
        ]
    lines += [
        "Give every pair `question`, `answer`, `type` and `difficulty` (the words used",
        "here) and the file an `indicator` field with the id below.",
        "",
        "## Indicators",
        "",
    ]
    for request in assignment.requests:
        lines.append("- " + _bullet(request, catalog, assignment.kind))
    lines += ["", "## Expected files", ""]
    lines += [f"- `{request.indicator}_qa_pairs.json`" for request in assignment.requests]
    return "\n".join(lines) + "\n"


def _bullet(request: Request, catalog: Catalog, kind: str) -> str:
    known = _known(catalog, request.indicator)
    text = f"{request.indicator} — {known.name}" if known else request.indicator
    if kind != KIND_GAP_FILL:
        return text
    asks = [f"{request.pairs} more pairs"]
    if request.types:
        asks.append(f"types: {_list(request.types)}")
    if request.difficulties:
        asks.append(f"difficulties: {_list(request.difficulties)}")
    return f"{text} — {'; '.join(asks)}"


def _known(catalog: Catalog, indicator_id: str) -> Indicator | None:
    try:
        return catalog.indicator(indicator_id)
    except KeyError:
        return None


def parse(
    session: int,
    text: str,
    catalog: Catalog,
    coverage: CoverageConfig,
    name: str = "assignment",
) -> Assignment:
    """Read an assignment file (ours or a person's) of session ``session``.

    A pair count out of range raises InputError naming ``name`` and the line.
    """
    heading = _HEADING.search(text)
    title = _SESSION_PREFIX.sub("", heading.group(1).strip()).strip() if heading else ""
    kind = KIND_GAP_FILL if re.search(r"gap[\s_-]*fill", title, re.I) else KIND_PLAN
    requests: list[Request] = []
    unknown: list[str] = []
    for line, bullet in _indicator_bullets(text):
        request = _parse_bullet(bullet, catalog, coverage, kind, name=name, line=line)
        if request is None:
            unknown.append(bullet)
        elif request.indicator not in {r.indicator for r in requests}:
            requests.append(request)
    if not title:
        try:
            title = catalog.session(session).theme
        except KeyError:
            title = f"Session {session}"
    return Assignment(session, title, kind, tuple(requests), tuple(unknown))


def _indicator_bullets(text: str) -> list[tuple[int, str]]:
    """The bullets under ``## Indicators``, with their line numbers."""
    bullets: list[tuple[int, str]] = []
    inside = False
    for number, line in enumerate(text.split("\n"), start=1):
        if section := _SECTION.match(line):
            inside = section.group(1).strip().lower().startswith("indicators")
            continue
        if inside and (bullet := _BULLET.match(line)):
            bullets.append((number, bullet.group(1).strip().replace("`", "").replace("**", "")))
    return bullets


def _parse_bullet(
    bullet: str, catalog: Catalog, coverage: CoverageConfig, kind: str, *, name: str, line: int
) -> Request | None:
    parts = _DASH.split(bullet, maxsplit=2)
    found = next((hit for part in parts[:2] if (hit := catalog.resolve(part)) is not None), None)
    if found is None:
        found = catalog.resolve(bullet)
    if found is None:
        return None
    if kind != KIND_GAP_FILL:
        return Request(
            found.id, coverage.target_pairs, coverage.question_types, coverage.difficulties
        )
    more = _MORE_PAIRS.search(bullet)
    types = _TYPES.search(bullet)
    levels = _DIFFICULTIES.search(bullet)
    return Request(
        found.id,
        bounded_int(
            more.group(1),
            maximum=MAX_PAIRS_ASKED,
            what="the number of pairs asked",
            name=name,
            position=f"line {line}",
        )
        if more
        else 0,
        _words(types.group(1)) if types else (),
        _words(levels.group(1)) if levels else (),
    )


def _words(text: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(",") if word.strip())


def render_plan(
    assignments: Sequence[Assignment], catalog: Catalog, coverage: CoverageConfig, agent: str
) -> str:
    """``MASTER_EXECUTION_PLAN.md``: the whole job and the folder protocol, for the agent."""
    total = sum(len(a.requests) for a in assignments)
    pairs = sum(r.pairs for a in assignments for r in a.requests)
    lines = [
        "# Master execution plan",
        "",
        f"{len(assignments)} sessions, {total} indicators, about {pairs:,} question/answer"
        " pairs in all. Work through the sessions in order without waiting for a reply:",
        "each file is picked up, checked and imported as soon as it lands.",
        "",
        "## How to deliver",
        "",
        f"1. Read `{INDEX_FILE}` for the list and `session-NN-assignment.md` for each session.",
        f"2. Write each indicator's pairs to `outbox/{agent}/<indicator>_qa_pairs.json` or",
        f"   `outbox/{agent}/session_NN/<indicator>_qa_pairs.json`. Write to a temporary name",
        "   (`*.tmp`) and rename when done, or just close the file: it is read once it has",
        "   been unchanged for a few seconds.",
        '3. File format: `{"indicator": "<id>", "session": NN, "qa_pairs": [{"question": ...,',
        '   "answer": ..., "type": ..., "difficulty": ...}, ...]}` (a bare array or JSON Lines',
        "   work too).",
        f"4. Keep `outbox/{agent}/{STATUS_FILE}` up to date:",
        "",
        "   ```",
        f"   Sessions Complete: X/{len(assignments)}",
        "   Current Session: X",
        "   Last Updated: YYYY-MM-DD HH:MM",
        "   Notes: (optional)",
        "   ```",
        "",
        f"5. When everything is delivered, write `outbox/{agent}/{COMPLETE_SIGNAL}`.",
        "",
        f"Problems with a file are reported in `inbox/{agent}/{FEEDBACK_DIR}/`: fix the file",
        "and write it again (a changed file replaces its earlier version). Follow-up",
        "assignments for gaps arrive here as new `session-NN-assignment.md` files.",
        "",
        "## Coverage asked for each indicator",
        "",
        f"- at least {coverage.target_pairs} pairs",
        f"- question types: {_list(coverage.question_types)}",
        f"- difficulty levels: {_list(coverage.difficulties)}",
        "",
        "## Sessions",
        "",
    ]
    lines += [
        f"- Session {a.session:02d} — {a.title}: {len(a.requests)} indicators"
        f" (`{file_name(a.session)}`)"
        for a in assignments
    ]
    return "\n".join(lines) + "\n"


def render_index(assignments: Sequence[Assignment], catalog: Catalog) -> str:
    """``SESSION_INDEX.md``: one row per session for quick reference."""
    lines = [
        "# Session index",
        "",
        "| session | theme | indicators | assignment |",
        "|---|---|---|---|",
    ]
    for a in assignments:
        names = ", ".join(
            known.name if (known := _known(catalog, r.indicator)) else r.indicator
            for r in a.requests
        )
        lines.append(f"| {a.session:02d} | {a.title} | {names} | `{file_name(a.session)}` |")
    return "\n".join(lines) + "\n"
