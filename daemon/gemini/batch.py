"""One Batch API job per corpus run, resumable across restarts.

submit    the pairs and their keys are recorded (job ``preparing``) before anything is
          sent; then JSONL is written and uploaded and the job created (``submitted``)
recover   a ``preparing`` job is first looked up by its display name, so a crash
          between create and record never creates a second job
poll      with doubling waits; PARTIALLY_SUCCEEDED counts as finished (the SDK's
          ``done`` does not)
apply     results are matched by key and applied in one transaction; keys with an
          error or a malformed answer are asked again in a follow-up job until
          ``judge_attempts`` is spent; a FAILED, CANCELLED or EXPIRED job puts its
          pairs back to pending with the reason (the next corpus run takes them)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daemon.core.config import Config
from daemon.core.errors import PermanentError, TransientError
from daemon.core.logs import Event, Logger
from daemon.gemini import client as gc
from daemon.gemini.backlog import retryable
from daemon.gemini.costs import BudgetReached, Ledger, cost_usd
from daemon.gemini.judge import batch_line, estimate_tokens, judge_name
from daemon.gemini.results import apply_results, finish_without_results
from daemon.providers.scorers import PairToScore
from daemon.store import Store, meta
from daemon.store import gemini as gemini_db

#: Remote JobState -> our job state, for the states after which nothing more happens.
FINISHED = {
    "JOB_STATE_SUCCEEDED": "succeeded",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "partially_succeeded",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLED": "cancelled",
    "JOB_STATE_EXPIRED": "expired",
}
WITH_RESULTS = ("succeeded", "partially_succeeded")


def open_jobs(store: Store) -> list[dict[str, Any]]:
    """Jobs still preparing or submitted, oldest first."""
    return gemini_db.open_jobs(store.db)


def _display_name(scorer: str, keys: Sequence[str], store: Store) -> str:
    digest = hashlib.sha256((scorer + "\n" + "\n".join(sorted(keys))).encode()).hexdigest()[:16]
    # The root's own id: another root on the same API key judging the same pairs makes
    # the same digest, and must not adopt this root's job (or this root its job).
    prefix = f"inboxd-judge-{meta.root_id(store.db)}-{digest}"
    return f"{prefix}-{gemini_db.display_names_like(store.db, prefix) + 1}"


def submit(
    store: Store,
    client: gc.Client,
    config: Config,
    pairs: Sequence[PairToScore],
    now: float,
    log: Logger,
) -> int | None:
    """Record and submit one judge job for ``pairs`` (cut to what the budget allows);
    returns the job's id, or None when there is nothing (affordable) to send."""
    g = config.gemini
    ledger = Ledger(config, store)
    per_pair = [cost_usd(g, g.judge_model, *estimate_tokens(config, p), batch=True) for p in pairs]
    chosen = list(pairs)
    try:
        ledger.check("judge", sum(per_pair), now)
    except BudgetReached:
        left = ledger.remaining()
        total, count = 0.0, 0
        for price in per_pair:
            if total + price > left:
                break
            total, count = total + price, count + 1
        chosen = chosen[:count]
    if not chosen:
        return None
    scorer = judge_name(config)
    display = _display_name(scorer, [p.hash for p in chosen], store)
    estimate = sum(per_pair[: len(chosen)])
    row = {
        "stage": "judge",
        "scorer": scorer,
        "model": g.judge_model,
        "display_name": display,
        "state": "preparing",
        "request_count": len(chosen),
        "estimated_usd": estimate,
        "created_at": now,
        "next_poll_at": now,
    }
    with store.transaction() as db:
        job_id = gemini_db.create_job(db, row, [(p.hash, p.hash) for p in chosen])
    advance(store, client, config, job_id, now, log)
    return job_id


def _job(store: Store, job_id: int) -> dict[str, Any]:
    return gemini_db.job(store.db, job_id)


def _set(store: Store, job_id: int, **fields: Any) -> None:
    with store.transaction() as db:
        gemini_db.update_job(db, job_id, fields)


def advance(
    store: Store, client: gc.Client, config: Config, job_id: int, now: float, log: Logger
) -> bool:
    """One step of an open job: create it (or find it) if needed, else poll it once and
    apply its results when it has finished. True if something changed."""
    job = _job(store, job_id)
    try:
        if job["state"] == "preparing":
            return _create(store, client, config, job, now, log)
        if job["state"] == "submitted":
            return _poll(store, client, config, job, now, log)
    except TransientError as exc:
        polls = int(job["polls"]) + 1
        wait = min(config.gemini.poll_max_seconds, config.gemini.poll_seconds * 2 ** min(polls, 10))
        _set(store, job_id, polls=polls, next_poll_at=now + wait, error=str(exc))
        log.warning(
            Event.JOB_POLLED,
            job=job["name"] or job["display_name"],
            error=str(exc),
            retry_in_s=round(wait, 1),
        )
    except PermanentError as exc:
        finish_without_results(store, config, job, "failed", str(exc), now, log)
        return True
    return False


def _create(
    store: Store, client: gc.Client, config: Config, job: dict[str, Any], now: float, log: Logger
) -> bool:
    found = gc.find_batch(client, config.gemini, job["display_name"])
    if found is not None:
        _set(
            store, job["id"], name=found.name, state="submitted", submitted_at=now, next_poll_at=now
        )
        log.info(Event.JOB_RECOVERED, job=found.name, display_name=job["display_name"])
        return True
    input_file = job["input_file"]
    if not input_file:
        path = _write_jsonl(store, config, job)
        input_file = gc.upload_jsonl(client, config.gemini, path, job["display_name"])
        _set(store, job["id"], input_file=input_file)
    created = gc.create_batch(
        client,
        config.gemini,
        model=job["model"],
        src=input_file,
        display_name=job["display_name"],
    )
    _set(
        store,
        job["id"],
        name=created.name,
        state="submitted",
        submitted_at=now,
        next_poll_at=now + config.gemini.poll_seconds,
        remote_state=created.state,
    )
    log.info(
        Event.JOB_SUBMITTED,
        job=created.name,
        display_name=job["display_name"],
        stage=job["stage"],
        model=job["model"],
        requests=job["request_count"],
        estimated_usd=round(job["estimated_usd"], 4),
    )
    return True


def _write_jsonl(store: Store, config: Config, job: dict[str, Any]) -> Path:
    rows = gemini_db.job_requests(store.db, job["id"])
    folder = config.state_dir / "gemini"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{job['display_name']}.jsonl"
    temp = path.with_suffix(".jsonl.tmp")
    with temp.open("w", encoding="utf-8") as out:
        for key, question, answer in rows:
            out.write(json.dumps(batch_line(config, PairToScore(key, question, answer))) + "\n")
    temp.replace(path)
    return path


def _poll(
    store: Store, client: gc.Client, config: Config, job: dict[str, Any], now: float, log: Logger
) -> bool:
    remote = gc.get_batch(client, config.gemini, job["name"])
    state = remote.state or "JOB_STATE_UNSPECIFIED"
    polls = int(job["polls"]) + 1
    finished = FINISHED.get(state)
    log.info(Event.JOB_POLLED, job=job["name"], state=state, polls=polls)
    if finished is None:
        wait = min(config.gemini.poll_max_seconds, config.gemini.poll_seconds * 2 ** min(polls, 10))
        _set(store, job["id"], polls=polls, remote_state=state, next_poll_at=now + wait, error=None)
        return False
    _set(store, job["id"], polls=polls, remote_state=state)
    if finished in WITH_RESULTS:
        lines = gc.result_lines(client, config.gemini, remote)
        apply_results(store, config, job, finished, lines, now, log)
    else:
        error = gc.job_error(client, job["name"])
        finish_without_results(store, config, job, finished, error, now, log)
    return True


def tick(store: Store, client: gc.Client, config: Config, now: float, log: Logger) -> bool:
    """Advance every open job that is due; after a job lands, send a follow-up job for
    keys that failed or came back malformed (until they run out of attempts)."""
    did = False
    for job in open_jobs(store):
        if job["next_poll_at"] is not None and job["next_poll_at"] > now:
            continue
        changed = advance(store, client, config, int(job["id"]), now, log)
        did = did or changed
        after = _job(store, int(job["id"]))
        if changed and after["state"] in WITH_RESULTS:
            retry = retryable(store, config, int(job["id"]))
            if retry:
                submit(store, client, config, retry, now, log)
    return did


def wait_for(store: Store, client: gc.Client, config: Config, log: Logger, timeout: float) -> None:
    """Drive open jobs to the end (``inboxd refine``-style foreground use and tests)."""
    deadline = time.monotonic() + timeout
    while open_jobs(store) and time.monotonic() < deadline:
        tick(store, client, config, time.time(), log)
        time.sleep(0.05)
