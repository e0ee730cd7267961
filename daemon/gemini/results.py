"""What a finished Batch API job does to the DB: its results matched to pairs by key and
applied in one transaction, or, for a job that ended without results, its pairs put
back to pending with the reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daemon.core.config import Config
from daemon.core.logs import Event
from daemon.gemini.costs import cost_usd, record_call
from daemon.gemini.judge import mark_unjudged, parse_verdict, to_score, usage_tokens
from daemon.store import Store
from daemon.store import corpus as q


def apply_results(
    store: Store,
    config: Config,
    job: dict[str, Any],
    finished: str,
    lines: Sequence[dict[str, Any]],
    now: float,
    log: Any,
) -> dict[str, int]:
    """Match result lines to the job's keys and apply them in one transaction."""
    from google.genai import types

    items: dict[str, str] = dict(
        store.db.execute(
            "SELECT key, pair_hash FROM gemini_job_items WHERE job_id = ?", [job["id"]]
        ).fetchall()
    )
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
            response = types.GenerateContentResponse.model_validate(line["response"])
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            outcome[key] = ("malformed", f"unreadable response: {exc.__class__.__name__}")
            continue
        used = usage_tokens(response)
        if used is not None:
            tokens_in, tokens_out = tokens_in + used[0], tokens_out + used[1]
        verdict = parse_verdict(response)
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
        db.conn.executemany(
            "UPDATE gemini_job_items SET state = ?, error = ? WHERE job_id = ? AND key = ?",
            [(state, error, job["id"], key) for key, (state, error) in outcome.items()],
        )
        for key, (state, error) in outcome.items():
            if state == "done":
                db.execute(
                    "DELETE FROM gemini_unjudged WHERE pair_hash = ? AND scorer = ?",
                    [items[key], job["scorer"]],
                )
            else:
                mark_unjudged(db, job["scorer"], items[key], str(error), now, malformed=True)
        record_call(
            db,
            stage=job["stage"],
            model=job["model"],
            mode="batch",
            requests=len(lines),
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            estimated=False,
            cost=cost,
            now=now,
            job_id=job["id"],
        )
        db.table("gemini_jobs").update(
            job["id"], {"state": finished, "cost_usd": cost, "finished_at": now, "error": None}
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
    log: Any,
) -> None:
    """Mark the job ``finished`` and its pending pairs unjudged with the reason."""
    reason = f"batch job {finished}" + (f": {error}" if error else "")
    with store.transaction() as db:
        pairs = [
            r[0]
            for r in db.execute(
                "SELECT pair_hash FROM gemini_job_items WHERE job_id = ? AND state = 'pending'",
                [job["id"]],
            ).fetchall()
        ]
        db.execute(
            "UPDATE gemini_job_items SET state = 'failed', error = ?"
            " WHERE job_id = ? AND state = 'pending'",
            [reason, job["id"]],
        )
        for pair_hash in pairs:
            mark_unjudged(db, job["scorer"], pair_hash, reason, now, malformed=False)
        db.table("gemini_jobs").update(
            job["id"], {"state": finished, "finished_at": now, "error": reason, "cost_usd": 0.0}
        )
    log.warning(
        Event.JOB_FAILED,
        job=job["name"] or job["display_name"],
        state=finished,
        error=reason,
        pairs_back_to_pending=len(pairs),
    )
