"""Moves batches along the state machine, one step at a time, for one set of stages.

The supervisor owns a mover for the intake stages (to ``imported``), the worker one for
the refinement stages; each takes only batches in its own states (and its own failed
ones), so the two never move the same batch. A stage may also return its batch
unmoved after a bounded chunk of progress (an embedding chunk): it is called again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from daemon.core.errors import InvalidTransitionError, PermanentError, TransientError
from daemon.core.heartbeat import WorkCancelled
from daemon.core.logs import Event
from daemon.core.records import Batch
from daemon.services import Services
from daemon.stages import Stage
from daemon.states import BatchState


class BatchMover:
    """The oldest workable batch of ``stages``' states, one step on."""

    def __init__(
        self,
        ctx: Services,
        stages: dict[BatchState, Stage],
        *,
        before: Callable[[Batch, float], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.stages = stages
        #: Called with the batch about to be worked on (the worker reports progress).
        self.before = before

    @property
    def states(self) -> list[BatchState]:
        return list(self.stages)

    def advance_one(self, now: float) -> Batch | None:
        """Move (or make progress on) one batch; None when there is nothing to do."""
        batch = self.ctx.store.next_workable(now, self.states)
        if batch is None:
            return None
        if batch.state is BatchState.FAILED:
            batch = self.ctx.store.resume(batch, now=now)
        stage = self.stages.get(batch.state)
        if stage is None:
            return None
        if self.before is not None:
            self.before(batch, now)
        started = time.monotonic()
        try:
            moved = stage(batch, self.ctx, now)
        except WorkCancelled:
            raise
        except TransientError as exc:
            return self._fail(batch, str(exc), now)
        except InvalidTransitionError as exc:
            # The other side moved it meanwhile (a newer version superseded it): its
            # state in the DB is the truth, nothing to undo.
            self.ctx.log.info(Event.BATCH_SKIPPED, batch=batch.id, path=batch.path, reason=str(exc))
            return self.ctx.store.batch(batch.id)
        except PermanentError as exc:
            return self._fail(batch, str(exc), now, park=True)
        except Exception as exc:
            self.ctx.log.exception(
                Event.BATCH_TRANSITION,
                batch=batch.id,
                path=batch.path,
                state=str(batch.state),
                error=repr(exc),
            )
            return self._fail(batch, f"unexpected error: {exc!r}", now)
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        if moved.state is batch.state:
            self.ctx.log.debug(
                Event.BATCH_PROGRESS, batch=moved.id, state=str(moved.state), ms=duration_ms
            )
            return moved
        self.ctx.log.info(
            Event.BATCH_TRANSITION,
            batch=moved.id,
            path=moved.path,
            from_state=str(batch.state),
            state=str(moved.state),
            duration_ms=duration_ms,
            **self._counts(moved),
        )
        self._after_move(moved, now)
        return moved

    def _after_move(self, batch: Batch, now: float) -> None:
        """The hooks on a move. The move is done: a failing hook is logged and the
        others still run."""
        for hook in self.ctx.hooks.after_move:
            try:
                hook(batch, now)
            except Exception as exc:  # a hook's bug must not fail the batch
                self.ctx.log.exception(
                    Event.BATCH_HOOK_FAILED,
                    hook=getattr(getattr(hook, "func", hook), "__qualname__", repr(hook)),
                    batch=batch.id,
                    state=str(batch.state),
                    error=repr(exc),
                )

    def _counts(self, batch: Batch) -> dict[str, int]:
        if batch.state not in (BatchState.VALIDATED, BatchState.IMPORTED):
            return {}
        row = self.ctx.store.db.table("batches").get(batch.id)
        keys = (
            ("pairs_valid", "pairs_invalid")
            if batch.state is BatchState.VALIDATED
            else ("pairs_valid", "pairs_new")
        )
        return {key: row[key] for key in keys if row[key] is not None}

    def _fail(self, batch: Batch, error: str, now: float, park: bool = False) -> Batch:
        retry = self.ctx.config.retry
        failed = self.ctx.store.fail(
            batch,
            error,
            now=now,
            max_attempts=1 if park else retry.max_attempts,
            base_seconds=retry.base_seconds,
            max_seconds=retry.max_seconds,
        )
        parked = failed.next_attempt_at is None
        event = Event.BATCH_PARKED if parked else Event.BATCH_RETRY_SCHEDULED
        self.ctx.log.warning(
            event,
            batch=batch.id,
            path=batch.path,
            state=str(batch.state),
            error=error,
            attempts=failed.attempts,
            retry_in_s=None
            if failed.next_attempt_at is None
            else round(failed.next_attempt_at - now, 1),
        )
        return failed

    def idle(self, now: float) -> bool:
        """No batch of these stages can be moved now."""
        return self.ctx.store.next_workable(now, self.states) is None
