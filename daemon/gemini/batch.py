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

from daemon.config import Config
from daemon.errors import InboxdError, PermanentError, TransientError
from daemon.gemini import client as gc
from daemon.gemini.costs import BudgetReached, check_budget, cost_usd, record_call
from daemon.gemini.judge import (
    batch_line,
    estimate_tokens,
    judge_name,
    mark_unjudged,
    parse_verdict,
    to_score,
    usage_tokens,
)
from daemon.logs import Event
from daemon.scorers import PairToScore
from daemon.store import Store
from daemon.store import corpus as q

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


def open_jobs(store: Store) -> list[dict[str, Any]]:
    return list(store.db.query("SELECT * FROM gemini_jobs WHERE state IN (?, ?) ORDER BY id", OPEN))


def _display_name(scorer: str, keys: Sequence[str], store: Store) -> str:
    digest = hashlib.sha256((scorer + "\n" + "\n".join(sorted(keys))).encode()).hexdigest()[:16]
    prefix = f"inboxd-judge-{digest}"
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
        _finish_without_results(store, config, job, "failed", str(exc), now, log)
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
        _finish_without_results(store, config, job, finished, _job_error(client, job), now, log)
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


def _finish_without_results(
    store: Store,
    config: Config,
    job: dict[str, Any],
    finished: str,
    error: str,
    now: float,
    log: Any,
) -> None:
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
            retry = _retryable(store, config, int(job["id"]))
            if retry:
                submit(store, client, config, retry, now, log)
    return did


def _retryable(store: Store, config: Config, job_id: int) -> list[PairToScore]:
    hashes = {
        r[0]
        for r in store.db.execute(
            "SELECT pair_hash FROM gemini_job_items WHERE job_id = ? AND state != 'done'", [job_id]
        ).fetchall()
    }
    return [p for p in backlog(store, config) if p.hash in hashes] if hashes else []


def wait_for(store: Store, client: Any, config: Config, log: Any, timeout: float) -> None:
    """Drive open jobs to the end (``inboxd refine``-style foreground use and tests)."""
    deadline = time.monotonic() + timeout
    while open_jobs(store) and time.monotonic() < deadline:
        tick(store, client, config, time.time(), log)
        time.sleep(0.05)


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
