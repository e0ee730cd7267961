"""-> rejected: a file that cannot be used at all; the agent is told why."""

from __future__ import annotations

from daemon.core.errors import InputError
from daemon.core.logs import Event
from daemon.core.records import Batch, PairError
from daemon.ingest.feedback import write_feedback
from daemon.services import Services
from daemon.states import BatchState
from daemon.store import Connection, meta


def reject(
    batch: Batch,
    ctx: Services,
    now: float,
    error: InputError,
    pair_errors: list[PairError] | None = None,
) -> Batch:
    """Reject the batch whole, with feedback naming file, position and reason."""
    reason = f"{error.reason} (at {error.position})" if error.position else error.reason
    feedback = write_feedback(
        ctx.config.inbox_dir,
        agent=batch.agent,
        relpath=batch.path,
        sha256=batch.sha256,
        imported=0,
        errors=pair_errors or [],
        rejected_reason=reason,
    )
    ctx.log.warning(
        Event.FILE_REJECTED,
        batch=batch.id,
        path=batch.path,
        reason=error.reason,
        position=error.position,
        feedback=str(feedback),
    )

    stale = ctx.store.has_older_version(batch)

    def effects(db: Connection) -> dict[str, object]:
        ctx.store.set_batch_fields(db, batch.id, reject_reason=reason)
        ctx.store.record_errors(db, batch.id, pair_errors or [])
        if stale:
            # The older version this one superseded took its pairs out of the corpus and
            # may have re-homed clusters, and no later stage of this batch will sync the
            # index: the worker, which owns it, does (runtime/worker.py).
            meta.set_value(db, meta.INDEX_STALE, str(now))
        return {"reason": reason}

    return ctx.store.advance(batch, BatchState.REJECTED, now=now, effects=effects)
