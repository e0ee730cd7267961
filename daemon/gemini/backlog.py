"""What the judge still has to do: the pairs to send, the ones a landed job should send
again, and the progress that ``status`` and ``report`` show."""

from __future__ import annotations

from typing import Any

from daemon.core.config import Config
from daemon.gemini.judge import judge_name
from daemon.providers.scorers import PairToScore
from daemon.store import Store
from daemon.store import gemini as gemini_db


def backlog(store: Store, config: Config, limit: int | None = None) -> list[PairToScore]:
    """Active pairs the configured judge has not scored, not in an open job, and not
    marked after ``judge_attempts`` failed answers."""
    rows = gemini_db.unjudged_pairs(
        store.db, judge_name(config), config.gemini.judge_attempts, limit
    )
    return [PairToScore(h, question, answer) for h, question, answer in rows]


def retryable(store: Store, config: Config, job_id: int) -> list[PairToScore]:
    """The pairs of a landed job that failed or came back malformed and may be asked again."""
    hashes = gemini_db.unfinished_item_hashes(store.db, job_id)
    return [p for p in backlog(store, config) if p.hash in hashes] if hashes else []


def judge_progress(store: Store, config: Config) -> dict[str, Any]:
    """The judge's progress over active pairs: scored, pending (to be sent), in open
    jobs, and marked (given up on after ``judge_attempts`` bad answers)."""
    scorer = judge_name(config)
    counts = gemini_db.judge_counts(store.db, scorer, config.gemini.judge_attempts)
    return {
        "scorer": scorer,
        "mode": config.gemini.mode,
        "scored": counts["scored"],
        "in_jobs": counts["in_jobs"],
        "pending": len(backlog(store, config)),
        "marked": counts["marked"],
    }
