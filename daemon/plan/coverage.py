"""Progress and gaps: the plan (catalog + registered assignments) set against what
arrived (the DB). Pure computation over :func:`daemon.store.sessions.indicator_facts`;
the reports module writes it out and the dispatch module acts on it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from daemon.core.catalog import Catalog
from daemon.core.config_sections import CoverageConfig
from daemon.plan.assignments import KIND_GAP_FILL, Assignment, Request
from daemon.store.sessions import IndicatorFacts

DONE, PARTIAL, MISSING = "done", "partial", "missing"

_NOT_WORD = re.compile(r"[^0-9a-z]+")
# Spellings agents use for the plan's words; anything else is matched by containment.
_SYNONYMS = {
    "easy": "beginner",
    "basic": "beginner",
    "novice": "beginner",
    "medium": "intermediate",
    "moderate": "intermediate",
    "hard": "advanced",
    "difficult": "advanced",
    "crypto": "crypto_specific",
    "worked": "example",
    "use_case": "example",
    "formula": "calculation",
}


def canonical(value: str, wanted: Sequence[str]) -> str | None:
    """The plan's word for a pair's ``type`` or ``difficulty`` (``Trading Signals`` ->
    ``signal``); None when it matches none of ``wanted``."""
    key = _NOT_WORD.sub("_", value.casefold()).strip("_")
    for candidate in (key, key.removesuffix("s"), _SYNONYMS.get(key)):
        if candidate in wanted:
            return candidate
    words = key.split("_")
    for word in wanted:
        if word in words or word.removesuffix("s") in words or key.startswith(word):
            return word
    return next((_SYNONYMS[w] for w in words if _SYNONYMS.get(w) in wanted), None)


@dataclass
class IndicatorCoverage:
    id: str
    name: str
    session: int
    category: str
    pairs: int
    active: int
    quality: float | None
    premium: int
    files: list[str]
    need: int  # active pairs short of the target
    missing_types: list[str]
    missing_difficulties: list[str]
    types_labelled: bool  # False: no pair says its type, so none can be called missing
    difficulties_labelled: bool

    @property
    def status(self) -> str:
        if self.active == 0:
            return MISSING
        return PARTIAL if self.need else DONE


@dataclass
class SessionProgress:
    number: int
    title: str
    kind: str  # plan | gap_fill
    assigned: str | None  # dispatch | person | delivered (before inboxd) | None
    indicators: list[str]
    files_expected: int
    files_delivered: int
    pairs: int
    active: int
    quality: float | None
    status: str


@dataclass
class Coverage:
    """Everything progress and gap reports need, as plain data."""

    target_pairs: int
    indicators: list[IndicatorCoverage]
    sessions: list[SessionProgress]
    unresolved: list[dict[str, Any]]  # names the catalog does not know, with their pairs
    categories: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


def _labels(counts: Iterable[str], wanted: Sequence[str]) -> set[str]:
    return {word for value in counts if (word := canonical(value, wanted)) is not None}


def analyse(
    catalog: Catalog,
    facts: dict[str | None, IndicatorFacts],
    assignments: Sequence[dict[str, Any]],
    coverage: CoverageConfig,
    progress: Sequence[dict[str, Any]] = (),
) -> Coverage:
    """Set the plan against what arrived."""
    indicators = []
    for known in catalog.indicators:
        got = facts.get(known.id, IndicatorFacts())
        types = _labels(got.types, coverage.question_types)
        levels = _labels(got.difficulties, coverage.difficulties)
        indicators.append(
            IndicatorCoverage(
                id=known.id,
                name=known.name,
                session=known.session,
                category=known.category,
                pairs=got.pairs,
                active=got.active,
                quality=got.quality,
                premium=got.premium,
                files=sorted(got.files),
                need=max(0, coverage.target_pairs - got.active),
                missing_types=[t for t in coverage.question_types if types and t not in types],
                missing_difficulties=[
                    d for d in coverage.difficulties if levels and d not in levels
                ],
                types_labelled=bool(types),
                difficulties_labelled=bool(levels),
            )
        )
    by_id = {i.id: i for i in indicators}
    unresolved: list[dict[str, Any]] = [
        {"indicator": name, "pairs": got.pairs, "files": sorted(got.files)}
        for name, got in sorted(facts.items(), key=lambda kv: str(kv[0]))
        if name not in by_id
    ]
    result = Coverage(
        coverage.target_pairs,
        indicators,
        _sessions(catalog, by_id, assignments),
        unresolved,
        _categories(indicators, coverage),
    )
    result.warnings = _status_warnings(result, progress) + [
        f"{row['pairs']} pair(s) name indicator {row['indicator']!r}, which the catalog does"
        f" not know (files: {', '.join(row['files'][:3])})"
        for row in unresolved
    ]
    return result


def _sessions(
    catalog: Catalog, by_id: dict[str, IndicatorCoverage], assignments: Sequence[dict[str, Any]]
) -> list[SessionProgress]:
    registered = {row["session"]: row for row in assignments}
    rows = []
    for session in catalog.sessions:
        members = [by_id[i.id] for i in catalog.indicators_for_session(session.number)]
        row = registered.get(session.number)
        assigned = row["source"] if row else ("delivered" if session.delivered else None)
        rows.append(_progress(session.number, session.theme, "plan", assigned, members))
    for number, row in sorted(registered.items()):
        if row["kind"] != KIND_GAP_FILL:
            continue
        members = [by_id[i] for i in row["indicators"] if i in by_id]
        progress = _progress(number, row["title"], KIND_GAP_FILL, row["source"], members)
        requests = [Request(**r) for r in row["requests"]] or [
            Request(i, 1) for i in row["indicators"]
        ]
        asks = [r for r in requests if r.indicator in by_id]
        still_open = sum(1 for r in asks if _still_open(r, by_id))
        # A follow-up is judged by its own asks, not by what its indicators had before.
        progress.status = (
            DONE if not still_open else (PARTIAL if still_open < len(asks) else MISSING)
        )
        rows.append(progress)
    return rows


def _progress(
    number: int, title: str, kind: str, assigned: str | None, members: list[IndicatorCoverage]
) -> SessionProgress:
    active = sum(m.active for m in members)
    scored = [(m.quality, m.active) for m in members if m.quality is not None]
    weight = sum(n for _, n in scored)
    quality = round(sum(q * n for q, n in scored) / weight, 1) if weight else None
    # All indicators done: done; none delivered: missing; anything else: partial.
    states = {m.status for m in members}
    status = states.pop() if len(states) == 1 else PARTIAL
    return SessionProgress(
        number=number,
        title=title,
        kind=kind,
        assigned=assigned,
        indicators=[m.id for m in members],
        files_expected=len(members),
        files_delivered=sum(1 for m in members if m.files),
        pairs=sum(m.pairs for m in members),
        active=active,
        quality=quality,
        status=status,
    )


def _still_open(request: Request, by_id: dict[str, IndicatorCoverage]) -> bool:
    got = by_id[request.indicator]
    return bool(
        (request.pairs and got.need)
        or set(request.types) & set(got.missing_types)
        or set(request.difficulties) & set(got.missing_difficulties)
    )


def _categories(
    indicators: Sequence[IndicatorCoverage], coverage: CoverageConfig
) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    for item in indicators:
        row = totals.setdefault(item.category, {"category": item.category, "indicators": 0})
        row["indicators"] += 1
        row["active"] = row.get("active", 0) + item.active
    for row in totals.values():
        row["target"] = row["indicators"] * coverage.target_pairs
        row["near_empty"] = row["active"] < coverage.near_empty_share * row["target"]
    return sorted(totals.values(), key=lambda row: row["category"])


def _status_warnings(result: Coverage, progress: Sequence[dict[str, Any]]) -> list[str]:
    """Where an agent's ``status.txt`` disagrees with what actually arrived."""
    # Sessions delivered before inboxd (the catalog's ``delivered``) count as complete in
    # an agent's tally but are not among the sessions it has to deliver.
    before = [s for s in result.sessions if s.kind == "plan" and s.assigned == "delivered"]
    plan = [s for s in result.sessions if s.kind == "plan" and s.assigned != "delivered"]
    complete = before + [s for s in plan if s.files_delivered == s.files_expected]
    warnings = []
    for row in progress:
        claimed, total = row.get("sessions_complete"), row.get("sessions_total")
        agent = row.get("agent", "agent")
        if claimed is not None and claimed > len(complete):
            short = [s.number for s in plan if s.files_delivered < s.files_expected]
            warnings.append(
                f"{agent}'s status.txt says {claimed} session(s) complete, but only"
                f" {len(complete)} delivered every expected file; still missing files:"
                f" session(s) {', '.join(map(str, short[:10]))}"
                + (" ..." if len(short) > 10 else "")
            )
        if total is not None and total != len(plan):
            warnings.append(
                f"{agent}'s status.txt counts {total} sessions; the plan has {len(plan)} to deliver"
            )
    return warnings


def gap_fill_requests(result: Coverage, already_asked: Iterable[str] = ()) -> list[Request]:
    """What to ask for, per indicator, to close the gaps (skipping ``already_asked``)."""
    skip = set(already_asked)
    return [
        Request(i.id, i.need, tuple(i.missing_types), tuple(i.missing_difficulties))
        for i in result.indicators
        if i.id not in skip and (i.need or i.missing_types or i.missing_difficulties)
    ]


def gap_fill_assignments(
    result: Coverage, catalog: Catalog, first_number: int, already_asked: Iterable[str] = ()
) -> list[Assignment]:
    """Follow-up assignments for exactly what is missing, one per catalog session with
    gaps, numbered from ``first_number``."""
    by_session: dict[int, list[Request]] = {}
    sessions = {i.id: i.session for i in result.indicators}
    for request in gap_fill_requests(result, already_asked):
        by_session.setdefault(sessions[request.indicator], []).append(request)
    made = []
    for offset, (number, requests) in enumerate(sorted(by_session.items())):
        theme = catalog.session(number).theme
        made.append(
            Assignment(
                first_number + offset,
                f"Gap fill: {theme} (session {number:02d})",
                KIND_GAP_FILL,
                tuple(requests),
            )
        )
    return made


def gaps(result: Coverage) -> dict[str, Any]:
    """The gap analysis as JSON-able data."""
    return {
        "target_pairs": result.target_pairs,
        "indicators_without_pairs": [i.id for i in result.indicators if i.active == 0],
        "indicators_below_target": [
            {"indicator": i.id, "active": i.active, "need": i.need}
            for i in result.indicators
            if i.active > 0 and i.need
        ],
        "missing_question_types": {
            i.id: i.missing_types for i in result.indicators if i.active and i.missing_types
        },
        "missing_difficulties": {
            i.id: i.missing_difficulties
            for i in result.indicators
            if i.active and i.missing_difficulties
        },
        "unlabelled": [
            i.id
            for i in result.indicators
            if i.active and not (i.types_labelled and i.difficulties_labelled)
        ],
        "sessions_not_delivered": [
            s.number for s in result.sessions if s.kind == "plan" and s.status == MISSING
        ],
        "near_empty_categories": [c["category"] for c in result.categories if c["near_empty"]],
        "unresolved_indicators": result.unresolved,
        "warnings": result.warnings,
    }


def render_gaps(found: dict[str, Any]) -> str:
    """``gaps.md``: the gap analysis for a person."""
    lines = ["# Gap analysis", ""]
    without = found["indicators_without_pairs"]
    below = found["indicators_below_target"]
    lines.append(
        f"Target: {found['target_pairs']} active pairs per indicator. "
        f"{len(without)} indicator(s) without pairs, {len(below)} below target, "
        f"{len(found['sessions_not_delivered'])} session(s) not delivered."
    )
    lines.append("")
    if found["warnings"]:
        lines += ["## Warnings", ""] + [f"- {w}" for w in found["warnings"]] + [""]
    if found["sessions_not_delivered"]:
        lines += ["## Sessions not delivered", ""]
        lines += [", ".join(f"{n:02d}" for n in found["sessions_not_delivered"]), ""]
    if without:
        lines += ["## Indicators without pairs", "", ", ".join(without), ""]
    if below:
        lines += ["## Indicators below target", "", "| indicator | active | short by |"]
        lines += ["|---|---:|---:|"]
        lines += [f"| {r['indicator']} | {r['active']} | {r['need']} |" for r in below]
        lines.append("")
    for key, title in (
        ("missing_question_types", "Question types missing"),
        ("missing_difficulties", "Difficulty levels missing"),
    ):
        if found[key]:
            lines += [f"## {title}", ""]
            lines += [f"- {ind}: {', '.join(words)}" for ind, words in found[key].items()]
            lines.append("")
    if found["unlabelled"]:
        lines += [
            "## Pairs without type or difficulty",
            "",
            "Their coverage of question types or difficulty levels cannot be judged: "
            + ", ".join(found["unlabelled"]),
            "",
        ]
    if found["near_empty_categories"]:
        lines += ["## Near-empty categories", "", ", ".join(found["near_empty_categories"]), ""]
    if found["unresolved_indicators"]:
        lines += ["## Names the catalog does not know (pairs kept)", ""]
        lines += [
            f"- {r['indicator']!r}: {r['pairs']} pair(s) in {', '.join(r['files'][:3])}"
            for r in found["unresolved_indicators"]
        ]
        lines.append("")
    if len(lines) == 4:
        lines += ["No gaps: every indicator meets the target.", ""]
    return "\n".join(lines)
