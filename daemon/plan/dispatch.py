"""Writing work into ``inbox/<agent>/`` and registering it: the plan's sessions, the
master plan and session index, and gap-fill follow-ups. A file a person wrote or edited
is never overwritten unless asked (``force``): it is kept and listed, and every other
file is written."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from daemon.core import atomic, ranges
from daemon.core.catalog import Catalog
from daemon.core.config import Config
from daemon.core.errors import InboxdError
from daemon.ingest.layout import assignment_session
from daemon.plan import assignments as md
from daemon.plan.assignments import Assignment
from daemon.plan.coverage import Coverage, gap_fill_assignments
from daemon.store import Store
from daemon.store import sessions as plan_db


@dataclass
class DispatchResult:
    """What dispatch did, by relative path: ``kept`` are files a person wrote or edited,
    left as they are (``force`` replaces them)."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    sessions: list[int] = field(default_factory=list)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_sessions(spec: str | None, catalog: Catalog) -> list[int]:
    """``2-44``, ``2,5,9-12`` -> session numbers; None means every session still to deliver."""
    if not spec:
        return [s.number for s in catalog.sessions if not s.delivered]
    try:
        numbers = ranges.parse(spec)
    except InboxdError as exc:
        raise InboxdError(f"--sessions: {exc}") from None
    unknown = sorted(set(numbers) - {s.number for s in catalog.sessions})
    if unknown:
        raise InboxdError(
            f"--sessions: session(s) {', '.join(map(str, unknown))} are not in the catalog"
            f" ({catalog.source})"
        )
    return numbers


def dispatch_plan(
    store: Store,
    config: Config,
    catalog: Catalog,
    agent: str,
    sessions: Sequence[int],
    *,
    force: bool,
    now: float,
) -> DispatchResult:
    """Write the sessions' assignments, the master plan and the session index."""
    chosen = [md.plan_assignment(catalog.session(n), catalog, config.coverage) for n in sessions]
    files = {md.file_name(a.session): md.render(a, catalog, config.coverage, agent) for a in chosen}
    files[md.PLAN_FILE] = md.render_plan(chosen, catalog, config.coverage, agent)
    files[md.INDEX_FILE] = md.render_index(chosen, catalog)
    return _write_all(store, config, catalog, agent, files, force=force, now=now)


def dispatch_gaps(
    store: Store,
    config: Config,
    catalog: Catalog,
    agent: str,
    found: Coverage,
    *,
    force: bool,
    now: float,
) -> DispatchResult:
    """Follow-up assignments for what is missing and not already asked for by an open
    gap-fill, numbered after the last session known."""
    registered = plan_db.assignments(store.db, agent)
    open_numbers = {
        s.number for s in found.sessions if s.kind == md.KIND_GAP_FILL and s.status != "done"
    }
    already = {
        indicator
        for row in registered
        if row["session"] in open_numbers
        for indicator in row["indicators"]
    }
    last = max([s.number for s in catalog.sessions] + [row["session"] for row in registered])
    made = gap_fill_assignments(found, catalog, last + 1, already)
    files = {md.file_name(a.session): md.render(a, catalog, config.coverage, agent) for a in made}
    return _write_all(store, config, catalog, agent, files, force=force, now=now)


def _write_all(
    store: Store,
    config: Config,
    catalog: Catalog,
    agent: str,
    files: dict[str, str],
    *,
    force: bool,
    now: float,
) -> DispatchResult:
    folder = config.inbox_dir / agent
    result = DispatchResult()
    for name, text in files.items():
        path, relpath, sha = folder / name, f"inbox/{agent}/{name}", _sha(text)
        if not force and _edited(store, path, relpath):
            # A person's words win: every other file is still written, this one is
            # listed so they can compare it, or replace it with --force.
            result.kept.append(relpath)
            continue
        if path.exists() and _sha(path.read_text(encoding="utf-8", errors="replace")) == sha:
            result.unchanged.append(relpath)
        else:
            atomic.write_text(path, text)
            result.written.append(relpath)
        with store.transaction() as db:
            plan_db.record_dispatched(db, relpath, sha, now)
        session = assignment_session(name)
        if session is not None:
            register(store, catalog, config, agent, relpath, text, now)
            result.sessions.append(session)
    return result


def _edited(store: Store, path: Path, relpath: str) -> bool:
    """True if ``path`` holds something other than what dispatch last wrote there."""
    if not path.exists():
        return False
    current = _sha(path.read_text(encoding="utf-8", errors="replace"))
    return current != plan_db.dispatched_sha(store.db, relpath)


def register(
    store: Store,
    catalog: Catalog,
    config: Config,
    agent: str,
    relpath: str,
    text: str,
    now: float,
) -> Assignment | None:
    """Register the session an assignment file describes (ours or a person's); returns
    it, or None if this exact file was already registered or names no session."""
    session = assignment_session(relpath.rsplit("/", 1)[-1])
    if session is None:
        return None
    assignment = md.parse(session, text, catalog, config.coverage, name=relpath)
    sha = _sha(text)
    source = "dispatch" if plan_db.dispatched_sha(store.db, relpath) == sha else "person"
    with store.transaction() as db:
        saved = plan_db.save_assignment(
            db,
            {
                "agent": agent,
                "session": session,
                "kind": assignment.kind,
                "title": assignment.title,
                "indicators": assignment.indicators + list(assignment.unknown),
                "requests": [r.as_dict() for r in assignment.requests],
                "path": relpath,
                "sha256": sha,
                "source": source,
                "registered_at": now,
            },
        )
    return assignment if saved else None
