"""Queries for the plan: registered assignments, what dispatch wrote, and the per
indicator facts that progress, gaps and the success report are computed from.
Functions take the sqlite-utils Database of a Store."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from daemon.core.quality import tier
from daemon.states import PIPELINE, BatchState

# Versions of files that count: not replaced by a newer version and not rejected whole.
LIVE_BATCHES = f"""
    SELECT id FROM batches WHERE state NOT IN ('{BatchState.SUPERSEDED}', '{BatchState.REJECTED}')
"""


def save_assignment(db: Database, row: dict[str, Any]) -> bool:
    """Register (or update) an agent's session; False if this exact file is known."""
    known = db.execute(
        "SELECT sha256 FROM assignments WHERE agent = ? AND session = ?",
        [row["agent"], row["session"]],
    ).fetchone()
    if known is not None and known[0] == row["sha256"]:
        return False
    db.table("assignments").upsert(
        {
            **row,
            "indicators": json.dumps(row["indicators"]),
            "requests": json.dumps(row["requests"]),
        },
        pk=("agent", "session"),
    )
    return True


def assignments(db: Database, agent: str | None = None) -> list[dict[str, Any]]:
    """Registered assignments, by session; JSON columns decoded."""
    if not db.table("assignments").exists():  # a DB the daemon has not migrated yet
        return []
    where, params = ("WHERE agent = ?", [agent]) if agent else ("", [])
    rows = db.query(f"SELECT * FROM assignments {where} ORDER BY session, agent", params)
    return [
        {
            **row,
            "indicators": json.loads(row["indicators"]),
            "requests": json.loads(row["requests"]),
        }
        for row in rows
    ]


def dispatched_sha(db: Database, path: str) -> str | None:
    """What ``inboxd dispatch`` last wrote at ``path`` (relative to the root)."""
    row = db.execute("SELECT sha256 FROM dispatched_files WHERE path = ?", [path]).fetchone()
    return None if row is None else str(row[0])


def record_dispatched(db: Database, path: str, sha256: str, now: float) -> None:
    db.table("dispatched_files").upsert(
        {"path": path, "sha256": sha256, "written_at": now}, pk="path"
    )


@dataclass
class IndicatorFacts:
    """What arrived for one indicator (a catalog id or a name the catalog lacks)."""

    pairs: int = 0  # distinct pairs of live files
    active: int = 0  # of those, not folded as duplicates
    quality_sum: float = 0.0
    scored: int = 0
    premium: int = 0
    files: set[str] = field(default_factory=set)
    types: Counter[str] = field(default_factory=Counter)
    difficulties: Counter[str] = field(default_factory=Counter)

    @property
    def quality(self) -> float | None:
        return round(self.quality_sum / self.scored, 1) if self.scored else None


def indicator_facts(
    db: Database, scorer: str, indicators: Collection[str] | None = None
) -> dict[str | None, IndicatorFacts]:
    """Per indicator: pairs, active pairs, quality, files, question types, difficulties.

    Counted over live files only, so a replaced version's pairs stop counting; a pair
    delivered by two files counts once. Quality is the ``scorer``'s, over active pairs.
    With ``indicators``, only those (one file's feedback needs a few, not all 227).
    """
    facts: dict[str | None, IndicatorFacts] = {}
    only, wanted = "", list(indicators or ())
    if indicators is not None:
        only = f" AND p.indicator IN ({', '.join('?' for _ in wanted)})"
    rows = db.execute(
        f"""
        SELECT p.id, p.indicator, p.type, p.difficulty,
               d.pair_id IS NOT NULL AS duplicate, s.score
        FROM pairs p
        LEFT JOIN duplicates d ON d.pair_id = p.id
        LEFT JOIN scores s ON s.pair_hash = p.hash AND s.scorer = ?
        WHERE p.id IN (SELECT pair_id FROM pair_sources WHERE batch_id IN ({LIVE_BATCHES})){only}
        """,
        [scorer, *wanted],
    )
    for _pair_id, indicator, kind, difficulty, duplicate, score in rows:
        found = facts.get(indicator) or facts.setdefault(indicator, IndicatorFacts())
        found.pairs += 1
        if kind:
            found.types[kind] += 1
        if difficulty:
            found.difficulties[difficulty] += 1
        if duplicate:
            continue
        found.active += 1
        if score is not None:
            found.scored += 1
            found.quality_sum += score
            found.premium += tier(score) == "premium"
    for indicator, path in db.execute(
        f"""
        SELECT DISTINCT p.indicator, b.path FROM pair_sources s
        JOIN pairs p ON p.id = s.pair_id JOIN batches b ON b.id = s.batch_id
        WHERE b.id IN ({LIVE_BATCHES}){only}
        """,
        wanted,
    ):
        facts.setdefault(indicator, IndicatorFacts()).files.add(path)
    return facts


def import_health(db: Database) -> dict[str, int]:
    """Batch outcomes the success report's "valid JSON" and "import" criteria read:
    latest versions rejected, failed, or not imported yet; invalid items of live files."""
    counts = dict.fromkeys(("live", "rejected", "failed", "unfinished", "invalid_items"), 0)
    latest = db.execute(
        """
        SELECT state FROM batches b
        WHERE b.id = (SELECT max(id) FROM batches WHERE path = b.path)
        """
    ).fetchall()
    # "Imported" is the bar: a batch still being refined has been imported.
    before_import = set(PIPELINE[: PIPELINE.index(BatchState.IMPORTED)])
    for (state,) in latest:
        if state == BatchState.REJECTED:
            counts["rejected"] += 1
        elif state == BatchState.FAILED:
            counts["failed"] += 1
        elif state in before_import:
            counts["unfinished"] += 1
        if state != BatchState.REJECTED:
            counts["live"] += 1
    counts["invalid_items"] = db.execute(
        f"SELECT count(*) FROM batch_errors WHERE batch_id IN ({LIVE_BATCHES})"
    ).fetchone()[0]
    return counts
