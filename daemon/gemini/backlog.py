"""What the judge still has to do: the pairs to send, the ones a landed job should send
again, and the progress that ``status`` and ``report`` show."""

from __future__ import annotations

from typing import Any

from daemon.core.config import Config
from daemon.gemini.judge import judge_name
from daemon.providers.scorers import PairToScore
from daemon.store import Store
from daemon.store import corpus as q


def backlog(store: Store, config: Config, limit: int | None = None) -> list[PairToScore]:
    """Active pairs the configured judge has not scored, not in an open job, and not
    marked after ``judge_attempts`` failed answers."""
    scorer = judge_name(config)
    rows = store.db.execute(
        "SELECT p.hash, p.question, p.answer FROM pairs p"
        f" WHERE p.id IN ({q.ACTIVE_PAIRS})"
        " AND NOT EXISTS (SELECT 1 FROM scores s WHERE s.pair_hash = p.hash AND s.scorer = ?)"
        " AND NOT EXISTS (SELECT 1 FROM gemini_job_items i JOIN gemini_jobs j ON j.id = i.job_id"
        "   WHERE i.pair_hash = p.hash AND j.scorer = ? AND j.state IN ('preparing', 'submitted'))"
        " AND NOT EXISTS (SELECT 1 FROM gemini_unjudged u WHERE u.pair_hash = p.hash"
        "   AND u.scorer = ? AND u.malformed >= ?)"
        " ORDER BY p.id" + (f" LIMIT {int(limit)}" if limit else ""),
        [scorer, scorer, scorer, config.gemini.judge_attempts],
    ).fetchall()
    return [PairToScore(h, question, answer) for h, question, answer in rows]


def retryable(store: Store, config: Config, job_id: int) -> list[PairToScore]:
    """The pairs of a landed job that failed or came back malformed and may be asked again."""
    hashes = {
        r[0]
        for r in store.db.execute(
            "SELECT pair_hash FROM gemini_job_items WHERE job_id = ? AND state != 'done'", [job_id]
        ).fetchall()
    }
    return [p for p in backlog(store, config) if p.hash in hashes] if hashes else []


def judge_progress(store: Store, config: Config) -> dict[str, Any]:
    """The judge's progress over active pairs: scored, pending (to be sent), in open
    jobs, and marked (given up on after ``judge_attempts`` bad answers)."""
    scorer = judge_name(config)
    active = f"SELECT p.hash FROM pairs p WHERE p.id IN ({q.ACTIVE_PAIRS})"
    scored = store.db.execute(
        f"SELECT count(*) FROM scores WHERE scorer = ? AND pair_hash IN ({active})", [scorer]
    ).fetchone()[0]
    in_jobs = store.db.execute(
        "SELECT count(DISTINCT i.pair_hash) FROM gemini_job_items i JOIN gemini_jobs j"
        " ON j.id = i.job_id WHERE j.scorer = ? AND j.state IN ('preparing', 'submitted')",
        [scorer],
    ).fetchone()[0]
    marked = store.db.execute(
        f"SELECT count(*) FROM gemini_unjudged WHERE scorer = ? AND malformed >= ?"
        f" AND pair_hash IN ({active})",
        [scorer, config.gemini.judge_attempts],
    ).fetchone()[0]
    return {
        "scorer": scorer,
        "mode": config.gemini.mode,
        "scored": int(scored),
        "in_jobs": int(in_jobs),
        "pending": len(backlog(store, config)),
        "marked": int(marked),
    }
