"""settled -> validated (or rejected): parse and validate every pair of the version."""

from __future__ import annotations

from pathlib import Path

from daemon.core.errors import InputError
from daemon.core.logs import Event
from daemon.core.records import Batch
from daemon.ingest import archive
from daemon.ingest.feedback import write_feedback
from daemon.ingest.parsed_cache import Validated
from daemon.ingest.reader import parse_bytes
from daemon.ingest.validation import validate_items
from daemon.services import Services
from daemon.stages.reject import reject
from daemon.states import BatchState
from daemon.store import Connection


def load_pairs(batch: Batch, ctx: Services, *, keep: bool = False) -> Validated:
    """Parse and validate the archived copy of a batch (raises InputError if unreadable).

    With ``keep`` the result is held for the next call for this batch version, which
    takes it instead of parsing again.
    """
    cache = ctx.parsed_cache
    held = cache.take(batch)
    if held is not None:
        return held
    found = _parse_and_validate(batch, ctx)
    if keep:
        cache.put(batch, found)
    return found


def _parse_and_validate(batch: Batch, ctx: Services) -> Validated:
    if batch.archive_path is None:
        raise InputError(batch.path, "no archived copy to read")
    data = archive.load(ctx.config.state_dir / batch.archive_path, batch.sha256)
    limits = ctx.config.limits
    parsed = parse_bytes(
        batch.path, data, max_bytes=limits.max_file_bytes, max_depth=limits.max_json_depth
    )
    return validate_items(
        batch.path,
        parsed,
        max_question_chars=limits.max_question_chars,
        max_answer_chars=limits.max_answer_chars,
        resolve_indicator=ctx.resolve_indicator,
    )


def validate(batch: Batch, ctx: Services, now: float) -> Batch:
    """Record the valid count and every invalid item; reject a file with nothing valid."""
    try:
        pairs, errors = load_pairs(batch, ctx, keep=True)
    except InputError as exc:
        return reject(batch, ctx, now, exc)
    if not pairs:
        if errors:  # each at its own position, listed with the rejection
            problem = InputError(batch.path, f"no valid pairs ({len(errors)} invalid item(s))")
        else:
            problem = InputError(batch.path, "no pairs: the file holds none", "whole file")
        return reject(batch, ctx, now, problem, errors)
    if errors:
        feedback = write_feedback(
            ctx.config.inbox_dir,
            agent=batch.agent,
            relpath=batch.path,
            sha256=batch.sha256,
            imported=len(pairs),
            errors=errors,
        )
        ctx.log.warning(
            Event.FILE_INVALID_PAIRS,
            batch=batch.id,
            path=batch.path,
            invalid=len(errors),
            valid=len(pairs),
            feedback=str(Path(feedback)),
            first=f"{errors[0].position}: {errors[0].reason}",
        )

    def effects(db: Connection) -> dict[str, int]:
        ctx.store.record_errors(db, batch.id, errors)
        counts = {
            "pairs_total": len(pairs) + len(errors),
            "pairs_valid": len(pairs),
            "pairs_invalid": len(errors),
        }
        ctx.store.set_batch_fields(db, batch.id, **counts)
        return counts

    return ctx.store.advance(batch, BatchState.VALIDATED, now=now, effects=effects)
