"""The state machine's writes: a new version of a file (superseding the old ones),
``advance`` with its effects and audit row in one transaction, failures with backoff,
and resuming a failed batch. Every move is checked against ``daemon.states``."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

from daemon.core.errors import InvalidTransitionError
from daemon.core.records import Batch
from daemon.states import BatchState, allowed
from daemon.store.base import Connection
from daemon.store.batches import BatchQueries

Effects = Callable[[Connection], dict[str, Any] | None]
#: Runs inside the transaction that supersedes batches: (db, their ids, now). A dict it
#: returns joins the detail of the new version's ``detected`` row; raising rolls back.
OnSupersede = Callable[[Connection, list[int], float], dict[str, Any] | None]


class StateMachine(BatchQueries):
    """Moving batches from state to state, one transaction per move."""

    def create_batch(
        self,
        *,
        agent: str,
        path: str,
        sha256: str,
        size: int,
        now: float,
        on_supersede: OnSupersede | None = None,
    ) -> tuple[Batch, list[int]]:
        """Record a new version of ``path`` as ``detected``; supersede the older ones.

        ``on_supersede`` (re-homing the clusters whose kept pair left, say) runs in the
        same transaction once older versions are superseded. Returns the batch and the
        ids of the batches it superseded.
        """
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO batches (agent, path, sha256, size, state, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [agent, path, sha256, size, BatchState.DETECTED, now, now],
            )
            batch_id = int(cursor.lastrowid or 0)
            older = [
                int(row[0])
                for row in db.execute(
                    "SELECT id FROM batches WHERE path = ? AND id < ? AND state != ?",
                    [path, batch_id, BatchState.SUPERSEDED],
                ).fetchall()
            ]
            for old_id in older:
                self._move(db, self.batch(old_id), BatchState.SUPERSEDED, now, {"by": batch_id})
            extra = on_supersede(db, older, now) if on_supersede and older else None
            detail = {"size": size, **(extra or {})}
            self._record(db, batch_id, None, BatchState.DETECTED, now, detail)
        return self.batch(batch_id), older

    def advance(
        self,
        batch: Batch,
        to: BatchState,
        *,
        now: float,
        detail: dict[str, Any] | None = None,
        effects: Effects | None = None,
    ) -> Batch:
        """Move ``batch`` to ``to`` with its effects and an audit row, in one transaction.

        ``effects`` runs inside the transaction; a dict it returns joins the detail.
        Refused when the batch is no longer in the state the caller saw.
        """
        if to is BatchState.FAILED:
            raise InvalidTransitionError(f"batch {batch.id}: use fail() to record a failure")
        with self.transaction() as db:
            current = self.batch(batch.id)
            if current.state is not batch.state:
                raise InvalidTransitionError(
                    f"batch {batch.id} is {current.state}, not {batch.state}; not moved to {to}"
                )
            extra = effects(db) if effects else None
            self._move(db, current, to, now, {**(detail or {}), **(extra or {})})
        return self.batch(batch.id)

    def fail(
        self,
        batch: Batch,
        error: str,
        *,
        now: float,
        max_attempts: int,
        base_seconds: float,
        max_seconds: float,
    ) -> Batch:
        """Record a transient failure: retry later with backoff, or park after the last try.

        Reads the batch again inside the transaction: the caller's copy may be stale.
        """
        with self.transaction() as db:
            batch = self.batch(batch.id)
            attempts = batch.attempts + 1
            resume = batch.resume_state if batch.state is BatchState.FAILED else batch.state
            parked = attempts >= max_attempts
            delay = min(max_seconds, base_seconds * 2 ** (attempts - 1))
            next_at = None if parked else now + delay * random.uniform(0.5, 1.0)
            detail = {
                "error": error,
                "attempts": attempts,
                "parked": parked,
                "next_attempt_at": next_at,
            }
            if batch.state is BatchState.FAILED:
                self._record(db, batch.id, BatchState.FAILED, BatchState.FAILED, now, detail)
            else:
                self._move(db, batch, BatchState.FAILED, now, detail)
            db.execute(
                "UPDATE batches SET resume_state = ?, attempts = ?, next_attempt_at = ?,"
                " last_error = ? WHERE id = ?",
                [resume, attempts, next_at, error, batch.id],
            )
        return self.batch(batch.id)

    def resume(self, batch: Batch, *, now: float) -> Batch:
        """Put a failed batch back at the state it failed in."""
        if batch.resume_state is None:
            raise InvalidTransitionError(f"batch {batch.id} has no state to resume")
        return self.advance(
            batch, batch.resume_state, now=now, detail={"attempt": batch.attempts + 1}
        )

    def _move(
        self, db: Database, batch: Batch, to: BatchState, now: float, detail: dict[str, Any]
    ) -> None:
        if not allowed(batch.state, to):
            raise InvalidTransitionError(f"batch {batch.id}: {batch.state} -> {to} is not allowed")
        fields = "state = ?, updated_at = ?"
        if to is not BatchState.FAILED:
            fields += ", resume_state = NULL, next_attempt_at = NULL"
        db.execute(f"UPDATE batches SET {fields} WHERE id = ?", [to, now, batch.id])
        self._record(db, batch.id, batch.state, to, now, detail)

    @staticmethod
    def _record(
        db: Database,
        batch_id: int,
        here: BatchState | None,
        there: BatchState,
        now: float,
        detail: dict[str, Any],
    ) -> None:
        db.execute(
            "INSERT INTO transitions (batch_id, from_state, to_state, at, detail)"
            " VALUES (?, ?, ?, ?, ?)",
            [batch_id, here, there, now, json.dumps(detail, default=str)],
        )
