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
from daemon.core.errors import InboxdError, PermanentError, TransientError
from daemon.core.logs import Event
from daemon.gemini import client as gc
from daemon.gemini.backlog import retryable
from daemon.gemini.costs import BudgetReached, check_budget, cost_usd
from daemon.gemini.judge import (
    batch_line,
    estimate_tokens,
    judge_name,
)
from daemon.gemini.results import apply_results, finish_without_results
from daemon.providers.scorers import PairToScore
from daemon.store import Store, meta

#: Remote JobState -> our job state, for the states after which nothing more happens.
FINISHED = {
    "JOB_STATE_SUCCEEDED": "succeeded",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "partially_succeeded",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLED": "cancelled",
    "JOB_STATE_EXPIRED": "expired",
}
WITH_RESULTS = ("succeeded", "partially_succeeded")
OPEN = ("preparing", "submitted")
MIME_TYPES = ("application/jsonl", "jsonl")  # the second for servers that refuse the first


def open_jobs(store: Store) -> list[dict[str, Any]]:
    return list(store.db.query("SELECT * FROM gemini_jobs WHERE state IN (?, ?) ORDER BY id", OPEN))


def _display_name(scorer: str, keys: Sequence[str], store: Store) -> str:
    digest = hashlib.sha256((scorer + "\n" + "\n".join(sorted(keys))).encode()).hexdigest()[:16]
    # The root's own id: another root on the same API key judging the same pairs makes
    # the same digest, and must not adopt this root's job (or this root its job).
    prefix = f"inboxd-judge-{meta.root_id(store.db)}-{digest}"
    earlier = store.db.execute(
        "SELECT count(*) FROM gemini_jobs WHERE display_name LIKE ?", [prefix + "-%"]
    ).fetchone()[0]
    return f"{prefix}-{int(earlier) + 1}"


def submit(
    store: Store, client: Any, config: Config, pairs: Sequence[PairToScore], now: float, log: Any
) -> int | None:
    """Record and submit one judge job for ``pairs`` (cut to what the budget allows);
    returns the job's id, or None when there is nothing (affordable) to send."""
    g = config.gemini
    per_pair = [cost_usd(g, g.judge_model, *estimate_tokens(config, p), batch=True) for p in pairs]
    chosen = list(pairs)
    try:
        check_budget(store.db, g, stage="judge", needed=sum(per_pair), now=now)
    except BudgetReached:
        left = g.budget_usd - _committed(store)
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
    with store.transaction() as db:
        job_id = (
            db.table("gemini_jobs")
            .insert(
                {
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
            )
            .last_pk
        )
        db.conn.executemany(
            "INSERT INTO gemini_job_items (job_id, key, pair_hash, state) VALUES (?, ?, ?, ?)",
            [(job_id, p.hash, p.hash, "pending") for p in chosen],
        )
    assert job_id is not None
    advance(store, client, config, int(job_id), now, log)
    return int(job_id)


def _committed(store: Store) -> float:
    from daemon.gemini.costs import reserved, spent

    return spent(store.db) + reserved(store.db)


def _job(store: Store, job_id: int) -> dict[str, Any]:
    return dict(store.db.table("gemini_jobs").get(job_id))


def _set(store: Store, job_id: int, **fields: Any) -> None:
    with store.transaction() as db:
        db.table("gemini_jobs").update(job_id, fields)


def advance(store: Store, client: Any, config: Config, job_id: int, now: float, log: Any) -> bool:
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


def find_remote(client: Any, config: Config, display_name: str) -> Any | None:
    """The remote job with this display name, if one was created."""

    def listing() -> Any:
        return next(
            (
                j
                for j in client.batches.list(config={"page_size": 100})
                if j.display_name == display_name
            ),
            None,
        )

    return gc.call(listing, config.gemini, what="batches.list")


def _create(
    store: Store, client: Any, config: Config, job: dict[str, Any], now: float, log: Any
) -> bool:
    found = find_remote(client, config, job["display_name"])
    if found is not None:
        _set(
            store, job["id"], name=found.name, state="submitted", submitted_at=now, next_poll_at=now
        )
        log.info(Event.JOB_RECOVERED, job=found.name, display_name=job["display_name"])
        return True
    input_file = job["input_file"]
    if not input_file:
        path = _write_jsonl(store, config, job)
        input_file = _upload(client, config, path, job["display_name"])
        _set(store, job["id"], input_file=input_file)
    created = gc.call(
        lambda: client.batches.create(
            model=job["model"], src=input_file, config={"display_name": job["display_name"]}
        ),
        config.gemini,
        what="batches.create",
    )
    _set(
        store,
        job["id"],
        name=created.name,
        state="submitted",
        submitted_at=now,
        next_poll_at=now + config.gemini.poll_seconds,
        remote_state=created.state.name if created.state else None,
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
    rows = store.db.execute(
        "SELECT i.key, p.question, p.answer FROM gemini_job_items i JOIN pairs p"
        " ON p.hash = i.pair_hash WHERE i.job_id = ? ORDER BY i.rowid",
        [job["id"]],
    ).fetchall()
    folder = config.state_dir / "gemini"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{job['display_name']}.jsonl"
    temp = path.with_suffix(".jsonl.tmp")
    with temp.open("w", encoding="utf-8") as out:
        for key, question, answer in rows:
            out.write(json.dumps(batch_line(config, PairToScore(key, question, answer))) + "\n")
    temp.replace(path)
    return path


def _upload(client: Any, config: Config, path: Path, display_name: str) -> str:
    from google.genai import types

    last: InboxdError | None = None
    for mime in MIME_TYPES:
        try:
            uploaded = gc.call(
                lambda mime=mime: client.files.upload(  # type: ignore[misc]
                    file=str(path),
                    config=types.UploadFileConfig(mime_type=mime, display_name=display_name),
                ),
                config.gemini,
                what="files.upload",
            )
            return str(uploaded.name)
        except PermanentError as exc:
            if "mime" not in str(exc).lower():
                raise
            last = exc
    assert last is not None
    raise last


def _poll(
    store: Store, client: Any, config: Config, job: dict[str, Any], now: float, log: Any
) -> bool:
    remote = gc.call(
        lambda: client.batches.get(name=job["name"]), config.gemini, what="batches.get"
    )
    state = remote.state.name if remote.state else "JOB_STATE_UNSPECIFIED"
    polls = int(job["polls"]) + 1
    finished = FINISHED.get(state)
    log.info(Event.JOB_POLLED, job=job["name"], state=state, polls=polls)
    if finished is None:
        wait = min(config.gemini.poll_max_seconds, config.gemini.poll_seconds * 2 ** min(polls, 10))
        _set(store, job["id"], polls=polls, remote_state=state, next_poll_at=now + wait, error=None)
        return False
    _set(store, job["id"], polls=polls, remote_state=state)
    if finished in WITH_RESULTS:
        lines = _result_lines(client, config, remote)
        apply_results(store, config, job, finished, lines, now, log)
    else:
        finish_without_results(store, config, job, finished, _job_error(client, job), now, log)
    return True


def _result_lines(client: Any, config: Config, remote: Any) -> list[dict[str, Any]]:
    dest = remote.dest
    if dest is not None and dest.file_name:
        raw = gc.call(
            lambda: client.files.download(file=dest.file_name), config.gemini, what="files.download"
        )
        lines = []
        for line in raw.decode("utf-8", "replace").splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue  # its key counts as missing: asked again in the follow-up job
        return [line for line in lines if isinstance(line, dict)]
    lines = []
    for item in (dest.inlined_responses if dest is not None else None) or []:
        key = (item.metadata or {}).get("key")
        if item.error is not None:
            lines.append({"key": key, "error": {"message": item.error.message}})
        elif item.response is not None:
            lines.append(
                {
                    "key": key,
                    "response": item.response.model_dump(
                        mode="json", by_alias=True, exclude_none=True
                    ),
                }
            )
    return lines


def _job_error(client: Any, job: dict[str, Any]) -> str:
    """The job's error text. The SDK drops ``error`` on the Gemini API, so read the raw
    operation (a private call; any failure just leaves the state as the reason)."""
    try:
        raw = client._api_client.request("get", job["name"], {}).body
        error = json.loads(raw).get("error") or {}
        return str(error.get("message") or "")
    except Exception:  # noqa: BLE001 - best effort detail for an already-known failure
        return ""


def tick(store: Store, client: Any, config: Config, now: float, log: Any) -> bool:
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


def wait_for(store: Store, client: Any, config: Config, log: Any, timeout: float) -> None:
    """Drive open jobs to the end (``inboxd refine``-style foreground use and tests)."""
    deadline = time.monotonic() + timeout
    while open_jobs(store) and time.monotonic() < deadline:
        tick(store, client, config, time.time(), log)
        time.sleep(0.05)
