"""Queries for the agent's quality feedback: what became of each item of a delivered
file (new, repeated, folded as a duplicate, its score), where the pairs it duplicates
came from, and the latest version of every file. Functions take the sqlite-utils
Database of a Store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlite_utils import Database

from daemon.store.corpus import pairs_by_id


def batch_items(db: Database, batch_id: int, scorer: str) -> list[dict[str, Any]]:
    """Every valid item of a batch in file order (a pair delivered twice appears twice):
    its pair, the duplicate decision on it and its score by ``scorer`` (None if not
    scored); ``subscores`` decoded."""
    rows = db.execute(
        """
        SELECT s.position, s.item_id, p.id, p.question, p.indicator, p.type, p.difficulty,
               p.first_batch_id, d.duplicate_of, d.similarity, d.method,
               sc.score, sc.tier, sc.subscores, sc.rationale
        FROM pair_sources s JOIN pairs p ON p.id = s.pair_id
        LEFT JOIN duplicates d ON d.pair_id = p.id
        LEFT JOIN scores sc ON sc.pair_hash = p.hash AND sc.scorer = ?
        WHERE s.batch_id = ? ORDER BY s.rowid
        """,
        [scorer, batch_id],
    ).fetchall()
    keys = (
        "position",
        "item_id",
        "pair_id",
        "question",
        "indicator",
        "type",
        "difficulty",
        "first_batch_id",
        "duplicate_of",
        "similarity",
        "method",
        "score",
        "tier",
        "subscores",
        "rationale",
    )
    items = [dict(zip(keys, row, strict=True)) for row in rows]
    for item in items:
        item["subscores"] = json.loads(item["subscores"]) if item["subscores"] else None
    return items


def deliveries(db: Database, pair_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Every delivery of these pairs, by any version of any file, oldest first: batch
    id, path, state and position."""
    found: dict[int, list[dict[str, Any]]] = {}
    unique = sorted(set(pair_ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for pair_id, batch_id, path, state, position in db.execute(
            "SELECT s.pair_id, b.id, b.path, b.state, s.position FROM pair_sources s"
            f" JOIN batches b ON b.id = s.batch_id WHERE s.pair_id IN ({marks})"
            " ORDER BY b.id, s.rowid",
            chunk,
        ).fetchall():
            found.setdefault(int(pair_id), []).append(
                {"batch_id": int(batch_id), "path": path, "state": state, "position": position}
            )
    return found


def questions(db: Database, pair_ids: Sequence[int]) -> dict[int, str]:
    """The question of each pair."""
    return {int(row["id"]): str(row["question"]) for row in pairs_by_id(db, list(pair_ids))}


def latest_versions(db: Database, agent: str | None = None) -> list[dict[str, Any]]:
    """The newest batch of every delivered path (of one agent, or all), by path."""
    where, params = ("WHERE b.agent = ?", [agent]) if agent else ("", [])
    return list(
        db.query(
            "SELECT b.* FROM batches b JOIN (SELECT path, max(id) AS id FROM batches"
            f" GROUP BY path) latest ON latest.id = b.id {where} ORDER BY b.path",
            params,
        )
    )


def folded_members(db: Database, kept_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Kept pair -> the pairs folded into it, each with its similarity and method."""
    found: dict[int, list[dict[str, Any]]] = {}
    unique = sorted(set(kept_ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for pair_id, kept, similarity, method in db.execute(
            "SELECT pair_id, duplicate_of, similarity, method FROM duplicates"
            f" WHERE duplicate_of IN ({marks}) ORDER BY pair_id",
            chunk,
        ).fetchall():
            found.setdefault(int(kept), []).append(
                {"pair_id": int(pair_id), "similarity": float(similarity), "method": method}
            )
    return found


def item_counts(db: Database, batch_id: int) -> tuple[int, int]:
    """Valid and invalid items of a batch (0 for a count not recorded yet)."""
    row = db.execute(
        "SELECT pairs_valid, pairs_invalid FROM batches WHERE id = ?", [batch_id]
    ).fetchone()
    return (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)


def batch_indicators(db: Database, batch_id: int) -> set[str]:
    """The indicators a batch's pairs name."""
    return {
        str(row[0])
        for row in db.execute(
            "SELECT DISTINCT p.indicator FROM pair_sources s JOIN pairs p ON p.id = s.pair_id"
            " WHERE s.batch_id = ? AND p.indicator IS NOT NULL",
            [batch_id],
        ).fetchall()
    }
