"""What a finished Batch API job does to the DB: its results matched to pairs by key and
applied in one transaction, or, for a job that ended without results, its pairs put
back to pending with the reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daemon.core.config import Config
from daemon.core.logs import Event, Logger
from daemon.gemini import client as gc
from daemon.gemini.costs import cost_usd
from daemon.gemini.judge import parse_verdict, to_score
from daemon.store import Store
from daemon.store import corpus as q
from daemon.store import gemini as gemini_db
from daemon.store.gemini import PaidCall


def apply_results(
    store: Store,
    config: Config,
    job: dict[str, Any],
    finished: str,
    lines: Sequence[dict[str, Any]],
    now: float,
    log: Logger,
) -> dict[str, int]:
    """Match result lines to the job's keys and apply them in one transaction."""
    items = gemini_db.job_keys(store.db, job["id"])
    scores: list[dict[str, object]] = []
    outcome: dict[str, tuple[str, str | None]] = {}
    tokens_in = tokens_out = 0
    for line in lines:
        key = line.get("key")
        if key not in items or key in outcome:
            continue  # unknown or repeated key: never trust position
        if "response" not in line:
            error = line.get("error") or {}
            outcome[key] = ("failed", f"request failed: {error.get('message') or error}")
            continue
        try:
            reply = gc.reply_from_json(line["response"])
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            outcome[key] = ("malformed", f"unreadable response: {exc.__class__.__name__}")
            continue
        if reply.usage is not None:
            tokens_in, tokens_out = tokens_in + reply.usage[0], tokens_out + reply.usage[1]
        verdict = parse_verdict(reply)
        if isinstance(verdict, str):
            outcome[key] = ("malformed", verdict)
        else:
            scores.append(to_score(items[key], verdict).as_row())
            outcome[key] = ("done", None)
    for key in items:
        outcome.setdefault(key, ("failed", "missing from the job's results"))
    cost = cost_usd(config.gemini, job["model"], tokens_in, tokens_out, batch=True)
    with store.transaction() as db:
        q.save_scores(db, job["scorer"], scores, now)
        gemini_db.set_item_states(
            db, job["id"], [(key, state, error) for key, (state, error) in outcome.items()]
        )
        for key, (state, error) in outcome.items():
            if state == "done":
                gemini_db.clear_unjudged(db, job["scorer"], items[key])
            else:
                gemini_db.mark_unjudged(
                    db, job["scorer"], items[key], str(error), now, malformed=True
                )
        call = PaidCall(
            job["stage"], job["model"], "batch", len(lines), tokens_in, tokens_out, False, cost
        )
        gemini_db.record_call(db, call, now, job_id=job["id"])
        gemini_db.update_job(
            db, job["id"], {"state": finished, "cost_usd": cost, "finished_at": now, "error": None}
        )
    counts = {
        s: sum(1 for st, _ in outcome.values() if st == s) for s in ("done", "malformed", "failed")
    }
    log.info(
        Event.JOB_COMPLETED,
        job=job["name"],
        state=finished,
        cost_usd=round(cost, 6),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        **counts,
    )
    return counts


def finish_without_results(
    store: Store,
    config: Config,
    job: dict[str, Any],
    finished: str,
    error: str,
    now: float,
    log: Logger,
) -> None:
    """Mark the job ``finished`` and its pending pairs unjudged with the reason."""
    reason = f"batch job {finished}" + (f": {error}" if error else "")
    with store.transaction() as db:
        pairs = gemini_db.fail_pending_items(db, job["id"], reason)
        for pair_hash in pairs:
            gemini_db.mark_unjudged(db, job["scorer"], pair_hash, reason, now, malformed=False)
        gemini_db.update_job(
            db,
            job["id"],
            {"state": finished, "finished_at": now, "error": reason, "cost_usd": 0.0},
        )
    log.warning(
        Event.JOB_FAILED,
        job=job["name"] or job["display_name"],
        state=finished,
        error=reason,
        pairs_back_to_pending=len(pairs),
    )
