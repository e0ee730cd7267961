"""Corpus-level queries for the refinement stages: embeddings, duplicates, scores and
the set of active pairs. Functions take the sqlite-utils Database of a Store."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlite_utils import Database

Vector = NDArray[np.float32]

# A pair ``p`` is live when some version of a file that is not superseded delivered it.
LIVE = """EXISTS (SELECT 1 FROM pair_sources s JOIN batches b ON b.id = s.batch_id
                  WHERE s.pair_id = p.id AND b.state != 'superseded')"""

# A pair is active when it is live and not marked as a duplicate.
ACTIVE_PAIRS = f"""
    SELECT p.id FROM pairs p
    WHERE p.id NOT IN (SELECT pair_id FROM duplicates)
      AND {LIVE}
"""


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def batch_pairs(db: Database, batch_id: int) -> list[dict[str, Any]]:
    """The pairs a batch delivered (each once), oldest first."""
    return list(
        db.query(
            "SELECT DISTINCT p.* FROM pairs p JOIN pair_sources s ON s.pair_id = p.id"
            " WHERE s.batch_id = ? ORDER BY p.id",
            [batch_id],
        )
    )


def pairs_by_id(db: Database, pair_ids: Sequence[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for start in range(0, len(pair_ids), 500):
        chunk = list(pair_ids[start : start + 500])
        rows += db.query(f"SELECT * FROM pairs WHERE id IN ({_marks(chunk)})", chunk)
    return rows


# -- embeddings ------------------------------------------------------------------------


def known_text_hashes(db: Database, model: str, text_hashes: Sequence[str]) -> set[str]:
    """Which of these texts already have a vector from ``model``."""
    found: set[str] = set()
    unique = list(dict.fromkeys(text_hashes))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        found.update(
            row[0]
            for row in db.execute(
                "SELECT text_hash FROM embeddings WHERE model = ?"
                f" AND text_hash IN ({_marks(chunk)})",
                [model, *chunk],
            ).fetchall()
        )
    return found


def save_embeddings(db: Database, model: str, vectors: dict[str, Vector], now: float) -> None:
    db.conn.executemany(
        "INSERT OR IGNORE INTO embeddings (text_hash, model, dim, vector, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            (h, model, int(v.shape[0]), v.astype(np.float32).tobytes(), now)
            for h, v in vectors.items()
        ],
    )


def load_embeddings(db: Database, model: str, text_hashes: Iterable[str]) -> dict[str, Vector]:
    unique = list(dict.fromkeys(text_hashes))
    found: dict[str, Vector] = {}
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        for text_hash, blob in db.execute(
            f"SELECT text_hash, vector FROM embeddings WHERE model = ?"
            f" AND text_hash IN ({_marks(chunk)})",
            [model, *chunk],
        ).fetchall():
            found[text_hash] = np.frombuffer(blob, dtype=np.float32)
    return found


def embedding_count(db: Database, model: str | None = None) -> int:
    if model is None:
        return int(db.execute("SELECT count(*) FROM embeddings").fetchone()[0])
    return int(db.execute("SELECT count(*) FROM embeddings WHERE model = ?", [model]).fetchone()[0])


# -- active pairs and duplicates -------------------------------------------------------


def active_pair_ids(db: Database) -> list[int]:
    return [int(row[0]) for row in db.execute(ACTIVE_PAIRS + " ORDER BY p.id").fetchall()]


def kept_of(db: Database, pair_id: int) -> int:
    """The pair a duplicate is folded into (itself when it is kept)."""
    row = db.execute("SELECT duplicate_of FROM duplicates WHERE pair_id = ?", [pair_id]).fetchone()
    return int(row[0]) if row else pair_id


def cluster_members(db: Database, kept_id: int) -> list[int]:
    return [kept_id] + [
        int(r[0])
        for r in db.execute(
            "SELECT pair_id FROM duplicates WHERE duplicate_of = ? ORDER BY pair_id", [kept_id]
        ).fetchall()
    ]


def live_among(db: Database, pair_ids: Sequence[int]) -> list[int]:
    """Which of these pairs are live, in id order."""
    found: list[int] = []
    for start in range(0, len(pair_ids), 500):
        chunk = list(pair_ids[start : start + 500])
        found += [
            int(row[0])
            for row in db.execute(
                f"SELECT p.id FROM pairs p WHERE p.id IN ({_marks(chunk)}) AND {LIVE}", chunk
            ).fetchall()
        ]
    return sorted(found)


def dead_keepers(db: Database, batch_ids: Sequence[int]) -> list[int]:
    """Kept pairs of a duplicate cluster that these batches delivered and that are no
    longer live (every version delivering them is superseded), in id order."""
    if not batch_ids:
        return []
    return [
        int(row[0])
        for row in db.execute(
            "SELECT DISTINCT p.id FROM pairs p JOIN pair_sources src ON src.pair_id = p.id"
            f" WHERE src.batch_id IN ({_marks(batch_ids)})"
            " AND p.id NOT IN (SELECT pair_id FROM duplicates)"
            " AND EXISTS (SELECT 1 FROM duplicates d WHERE d.duplicate_of = p.id)"
            f" AND NOT {LIVE} ORDER BY p.id",
            list(batch_ids),
        ).fetchall()
    ]


def mark_checked(db: Database, pair_id: int, norm_hash: str, now: float) -> None:
    db.execute(
        "UPDATE pairs SET norm_hash = ?, dedup_at = ? WHERE id = ?", [norm_hash, now, pair_id]
    )


def set_duplicate(
    db: Database,
    pair_id: int,
    of: int,
    similarity: float,
    method: str,
    threshold: float,
    now: float,
) -> None:
    db.execute(
        "INSERT OR REPLACE INTO duplicates (pair_id, duplicate_of, similarity, method,"
        " threshold, decided_at) VALUES (?, ?, ?, ?, ?, ?)",
        [pair_id, of, float(similarity), method, threshold, now],
    )


def clear_duplicate(db: Database, pair_id: int) -> None:
    db.execute("DELETE FROM duplicates WHERE pair_id = ?", [pair_id])


def replace_all_duplicates(
    db: Database, rows: Sequence[tuple[int, int, float, str]], threshold: float, now: float
) -> None:
    """Write a whole new de-duplication decision (corpus re-run)."""
    db.execute("DELETE FROM duplicates")
    db.conn.executemany(
        "INSERT INTO duplicates (pair_id, duplicate_of, similarity, method, threshold,"
        " decided_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(p, of, float(sim), method, threshold, now) for p, of, sim, method in rows],
    )


def duplicate_count(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM duplicates").fetchone()[0])


# -- scores ----------------------------------------------------------------------------


def scored_hashes(db: Database, scorer: str, pair_hashes: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(pair_hashes), 500):
        chunk = list(pair_hashes[start : start + 500])
        found.update(
            r[0]
            for r in db.execute(
                f"SELECT pair_hash FROM scores WHERE scorer = ? AND pair_hash IN ({_marks(chunk)})",
                [scorer, *chunk],
            ).fetchall()
        )
    return found


def save_scores(db: Database, scorer: str, rows: Sequence[dict[str, Any]], now: float) -> None:
    db.conn.executemany(
        "INSERT OR REPLACE INTO scores (pair_hash, scorer, score, tier, subscores, rationale,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r["pair_hash"],
                scorer,
                r["score"],
                r["tier"],
                json.dumps(r["subscores"]),
                r.get("rationale"),
                now,
            )
            for r in rows
        ],
    )


def scores_for(db: Database, scorer: str, pair_ids: Sequence[int]) -> dict[int, float]:
    """Score of each pair by ``scorer`` (pairs not yet scored are absent)."""
    found: dict[int, float] = {}
    for start in range(0, len(pair_ids), 500):
        chunk = list(pair_ids[start : start + 500])
        for pair_id, score in db.execute(
            f"SELECT p.id, s.score FROM pairs p JOIN scores s ON s.pair_hash = p.hash"
            f" AND s.scorer = ? WHERE p.id IN ({_marks(chunk)})",
            [scorer, *chunk],
        ).fetchall():
            found[int(pair_id)] = float(score)
    return found


def quality_summary(db: Database, scorer: str) -> dict[str, Any]:
    """Average score and tier counts over the active pairs."""
    rows = db.execute(
        f"SELECT s.tier, count(*), avg(s.score) FROM pairs p JOIN scores s"
        f" ON s.pair_hash = p.hash AND s.scorer = ? WHERE p.id IN ({ACTIVE_PAIRS})"
        " GROUP BY s.tier",
        [scorer],
    ).fetchall()
    tiers = {tier: int(n) for tier, n, _ in rows}
    total = sum(tiers.values())
    average = sum(n * avg for _, n, avg in rows) / total if total else None
    return {
        "scored": total,
        "average": None if average is None else round(average, 1),
        "tiers": tiers,
    }


# -- export ----------------------------------------------------------------------------


def pair_deliveries(db: Database) -> dict[int, list[dict[str, Any]]]:
    """Each pair's deliveries by files that are not superseded, oldest first."""
    found: dict[int, list[dict[str, Any]]] = {}
    for pair_id, batch_id, agent, path, sha256, position, item_id in db.execute(
        "SELECT s.pair_id, b.id, b.agent, b.path, b.sha256, s.position, s.item_id"
        " FROM pair_sources s JOIN batches b ON b.id = s.batch_id"
        " WHERE b.state != 'superseded' ORDER BY s.pair_id, b.id"
    ).fetchall():
        found.setdefault(int(pair_id), []).append(
            {
                "agent": agent,
                "path": path,
                "file_sha256": sha256,
                "batch_id": int(batch_id),
                "position": position,
                "item_id": item_id,
            }
        )
    return found


def folded_into(db: Database) -> dict[int, list[int]]:
    """Kept pair id -> the duplicate pair ids folded into it."""
    found: dict[int, list[int]] = {}
    for pair_id, kept in db.execute(
        "SELECT pair_id, duplicate_of FROM duplicates ORDER BY pair_id"
    ).fetchall():
        found.setdefault(int(kept), []).append(int(pair_id))
    return found


def scores_with_tiers(db: Database, scorer: str) -> dict[int, tuple[float, str]]:
    """Every pair's score and tier by ``scorer``."""
    return {
        int(pid): (float(score), str(tier))
        for pid, score, tier in db.execute(
            "SELECT p.id, s.score, s.tier FROM pairs p JOIN scores s"
            " ON s.pair_hash = p.hash AND s.scorer = ?",
            [scorer],
        ).fetchall()
    }
