"""Queries for the Gemini provider: the cost ledger and budget stops, Batch API jobs and
their items, pairs the judge gave up on, and enhancement rewrites. Functions take the
sqlite-utils Database of a Store (writes: inside one of its transactions)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from daemon.store.corpus import ACTIVE_PAIRS

#: Jobs whose estimated cost is reserved against the budget until their real cost lands.
OPEN_JOB_STATES = ("preparing", "submitted")
_OPEN = "(" + ", ".join(f"'{state}'" for state in OPEN_JOB_STATES) + ")"


# -- the ledger ------------------------------------------------------------------------


@dataclass(frozen=True)
class PaidCall:
    """One priced call (or one batch job's results) as the ledger records it."""

    stage: str  # embed | judge | enhance | ask
    model: str
    mode: str  # interactive | batch
    requests: int
    input_tokens: int
    output_tokens: int
    #: True when the API sent no usage and the tokens are our estimate.
    estimated: bool
    cost: float


def record_call(db: Database, call: PaidCall, now: float, job_id: int | None = None) -> None:
    """One paid call in the ledger."""
    db.execute(
        "INSERT INTO gemini_calls (at, stage, model, mode, job_id, requests, input_tokens,"
        " output_tokens, estimated, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            now,
            call.stage,
            call.model,
            call.mode,
            job_id,
            call.requests,
            call.input_tokens,
            call.output_tokens,
            int(call.estimated),
            call.cost,
        ],
    )


def spent(db: Database) -> float:
    """Dollars recorded so far, all stages."""
    return float(db.execute("SELECT coalesce(sum(cost_usd), 0) FROM gemini_calls").fetchone()[0])


def reserved(db: Database) -> float:
    """Estimated dollars of jobs submitted but not yet billed."""
    row = db.execute(
        f"SELECT coalesce(sum(estimated_usd), 0) FROM gemini_jobs WHERE state IN {_OPEN}"
    ).fetchone()
    return float(row[0])


def record_budget_stop(
    db: Database, *, stage: str, needed: float, remaining: float, now: float
) -> None:
    """A paid step the budget cap refused."""
    db.execute(
        "INSERT INTO gemini_budget_stops (at, stage, needed_usd, remaining_usd)"
        " VALUES (?, ?, ?, ?)",
        [now, stage, needed, remaining],
    )


def budget_stop_count(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM gemini_budget_stops").fetchone()[0])


def has_ledger(db: Database) -> bool:
    """False on a DB the 0004_gemini migration has not reached (an old daemon's)."""
    return bool(db["gemini_calls"].exists())


def spend_by_stage(db: Database) -> list[dict[str, Any]]:
    """Calls, requests, tokens and dollars per stage, model and mode."""
    rows = db.execute(
        "SELECT stage, model, mode, count(*), sum(requests), sum(input_tokens),"
        " sum(output_tokens), sum(estimated), sum(cost_usd) FROM gemini_calls"
        " GROUP BY stage, model, mode ORDER BY stage, model, mode"
    ).fetchall()
    return [
        {
            "stage": stage,
            "model": model,
            "mode": mode,
            "calls": int(calls),
            "requests": int(requests),
            "input_tokens": int(tin),
            "output_tokens": int(tout),
            "estimated_calls": int(est),
            "cost_usd": round(float(cost), 6),
        }
        for stage, model, mode, calls, requests, tin, tout, est, cost in rows
    ]


def jobs_by_state(db: Database) -> dict[str, int]:
    rows = db.execute("SELECT state, count(*) FROM gemini_jobs GROUP BY state").fetchall()
    return {str(state): int(n) for state, n in rows}


def last_budget_stop(db: Database) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT at, stage, needed_usd, remaining_usd FROM gemini_budget_stops"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return {"at": row[0], "stage": row[1], "needed_usd": row[2], "remaining_usd": row[3]}


# -- the judge's backlog ---------------------------------------------------------------


def unjudged_pairs(
    db: Database, scorer: str, attempts: int, limit: int | None = None
) -> list[tuple[str, str, str]]:
    """(hash, question, answer) of active pairs ``scorer`` has not scored, not in an open
    job, and not marked after ``attempts`` failed answers; oldest first."""
    rows = db.execute(
        "SELECT p.hash, p.question, p.answer FROM pairs p"
        f" WHERE p.id IN ({ACTIVE_PAIRS})"
        " AND NOT EXISTS (SELECT 1 FROM scores s WHERE s.pair_hash = p.hash AND s.scorer = ?)"
        " AND NOT EXISTS (SELECT 1 FROM gemini_job_items i JOIN gemini_jobs j ON j.id = i.job_id"
        f"   WHERE i.pair_hash = p.hash AND j.scorer = ? AND j.state IN {_OPEN})"
        " AND NOT EXISTS (SELECT 1 FROM gemini_unjudged u WHERE u.pair_hash = p.hash"
        "   AND u.scorer = ? AND u.malformed >= ?)"
        " ORDER BY p.id" + (f" LIMIT {int(limit)}" if limit else ""),
        [scorer, scorer, scorer, attempts],
    ).fetchall()
    return [(str(h), str(question), str(answer)) for h, question, answer in rows]


def judge_counts(db: Database, scorer: str, attempts: int) -> dict[str, int]:
    """Active pairs ``scorer`` scored, pairs in its open jobs, and active pairs marked
    after ``attempts`` bad answers."""
    active = f"SELECT p.hash FROM pairs p WHERE p.id IN ({ACTIVE_PAIRS})"
    scored = db.execute(
        f"SELECT count(*) FROM scores WHERE scorer = ? AND pair_hash IN ({active})", [scorer]
    ).fetchone()[0]
    in_jobs = db.execute(
        "SELECT count(DISTINCT i.pair_hash) FROM gemini_job_items i JOIN gemini_jobs j"
        f" ON j.id = i.job_id WHERE j.scorer = ? AND j.state IN {_OPEN}",
        [scorer],
    ).fetchone()[0]
    marked = db.execute(
        "SELECT count(*) FROM gemini_unjudged WHERE scorer = ? AND malformed >= ?"
        f" AND pair_hash IN ({active})",
        [scorer, attempts],
    ).fetchone()[0]
    return {"scored": int(scored), "in_jobs": int(in_jobs), "marked": int(marked)}


def mark_unjudged(
    db: Database, scorer: str, pair_hash: str, reason: str, now: float, *, malformed: bool
) -> None:
    """Record why a pair is (back to) pending for the judge; malformed answers count."""
    db.execute(
        "INSERT INTO gemini_unjudged (pair_hash, scorer, malformed, reason, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (pair_hash, scorer) DO UPDATE SET"
        " malformed = malformed + excluded.malformed, reason = excluded.reason,"
        " updated_at = excluded.updated_at",
        [pair_hash, scorer, int(malformed), reason, now],
    )


def clear_unjudged(db: Database, scorer: str, pair_hash: str) -> None:
    db.execute(
        "DELETE FROM gemini_unjudged WHERE pair_hash = ? AND scorer = ?", [pair_hash, scorer]
    )


# -- Batch API jobs --------------------------------------------------------------------


def open_jobs(db: Database) -> list[dict[str, Any]]:
    """Jobs still preparing or submitted, oldest first."""
    return list(db.query(f"SELECT * FROM gemini_jobs WHERE state IN {_OPEN} ORDER BY id"))


def job(db: Database, job_id: int) -> dict[str, Any]:
    return dict(db.table("gemini_jobs").get(job_id))


def update_job(db: Database, job_id: int, fields: dict[str, Any]) -> None:
    db.table("gemini_jobs").update(job_id, fields)


def display_names_like(db: Database, prefix: str) -> int:
    """How many jobs have a display name ``prefix-<n>``."""
    row = db.execute(
        "SELECT count(*) FROM gemini_jobs WHERE display_name LIKE ?", [prefix + "-%"]
    ).fetchone()
    return int(row[0])


def create_job(db: Database, row: dict[str, Any], keys: Sequence[tuple[str, str]]) -> int:
    """Record a job and its items, ``(key, pair_hash)`` each, all pending; its id."""
    job_id = db.table("gemini_jobs").insert(row).last_pk
    assert job_id is not None
    db.conn.executemany(
        "INSERT INTO gemini_job_items (job_id, key, pair_hash, state) VALUES (?, ?, ?, ?)",
        [(job_id, key, pair_hash, "pending") for key, pair_hash in keys],
    )
    return int(job_id)


def job_requests(db: Database, job_id: int) -> list[tuple[str, str, str]]:
    """(key, question, answer) of a job's items, in the order they were recorded."""
    rows = db.execute(
        "SELECT i.key, p.question, p.answer FROM gemini_job_items i JOIN pairs p"
        " ON p.hash = i.pair_hash WHERE i.job_id = ? ORDER BY i.rowid",
        [job_id],
    ).fetchall()
    return [(str(k), str(question), str(answer)) for k, question, answer in rows]


def job_keys(db: Database, job_id: int) -> dict[str, str]:
    """A job's request key -> pair hash."""
    rows = db.execute(
        "SELECT key, pair_hash FROM gemini_job_items WHERE job_id = ?", [job_id]
    ).fetchall()
    return {str(k): str(h) for k, h in rows}


def unfinished_item_hashes(db: Database, job_id: int) -> set[str]:
    """Pairs of a job that failed or came back malformed (or never came back)."""
    rows = db.execute(
        "SELECT pair_hash FROM gemini_job_items WHERE job_id = ? AND state != 'done'", [job_id]
    ).fetchall()
    return {str(r[0]) for r in rows}


def set_item_states(
    db: Database, job_id: int, outcome: Iterable[tuple[str, str, str | None]]
) -> None:
    """Each ``(key, state, error)`` of a job's items."""
    db.conn.executemany(
        "UPDATE gemini_job_items SET state = ?, error = ? WHERE job_id = ? AND key = ?",
        [(state, error, job_id, key) for key, state, error in outcome],
    )


def fail_pending_items(db: Database, job_id: int, reason: str) -> list[str]:
    """Mark a job's pending items failed with ``reason``; their pair hashes."""
    pairs = [
        str(r[0])
        for r in db.execute(
            "SELECT pair_hash FROM gemini_job_items WHERE job_id = ? AND state = 'pending'",
            [job_id],
        ).fetchall()
    ]
    db.execute(
        "UPDATE gemini_job_items SET state = 'failed', error = ?"
        " WHERE job_id = ? AND state = 'pending'",
        [reason, job_id],
    )
    return pairs


# -- enhancement -----------------------------------------------------------------------


def enhancement_candidates(
    db: Database, scorer: str, below: float, limit: int
) -> list[dict[str, Any]]:
    """Active pairs ``scorer`` scored below ``below`` with no rewrite yet, worst first."""
    return list(
        db.query(
            "SELECT p.hash, p.question, p.answer, s.score, s.subscores FROM pairs p"
            " JOIN scores s ON s.pair_hash = p.hash AND s.scorer = :scorer"
            f" WHERE p.id IN ({ACTIVE_PAIRS}) AND s.score < :bar"
            " AND NOT EXISTS (SELECT 1 FROM gemini_enhancements e WHERE e.pair_hash = p.hash"
            "   AND e.scorer = :scorer) ORDER BY s.score, p.id LIMIT :n",
            {"scorer": scorer, "bar": below, "n": limit},
        )
    )


def save_enhancement(db: Database, row: dict[str, Any]) -> None:
    db.table("gemini_enhancements").insert(row)
