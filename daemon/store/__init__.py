"""The one module that touches SQLite: connection, migrations, the state machine's
``advance`` and named queries. WAL on open; the daemon is the one writer."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from daemon.core.errors import InvalidTransitionError, PermanentError, TransientError
from daemon.core.records import Batch, PairError, PairRecord
from daemon.states import BatchState, allowed
from daemon.store import progress as progress_db
from daemon.store import readers
from daemon.store.schema import migrations

#: The handle a transaction's effects and the named queries get. Stages name this
#: type, never sqlite_utils: the store is the only module that knows what it is.
Connection = Database

Effects = Callable[[Connection], dict[str, Any] | None]
#: Runs inside the transaction that supersedes batches: (db, their ids, now). A dict it
#: returns joins the detail of the new version's ``detected`` row; raising rolls back.
OnSupersede = Callable[[Connection, list[int], float], dict[str, Any] | None]

_RETRYABLE_SQLITE = ("database is locked", "disk i/o error", "database or disk is full")


class Store:
    """The SQLite database of one root."""

    def __init__(self, path: Path, *, readonly: bool = False, timeout: float = 30.0) -> None:
        self.path = path
        self.readonly = readonly
        # The -wal/-shm a reader might create (see daemon.store.readers).
        self._absent = readers.absent_companions(path) if readonly else []
        try:
            if readonly:
                conn = sqlite3.connect(
                    readers.read_only_uri(path), uri=True, timeout=timeout, check_same_thread=False
                )
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
            self.db = Database(conn, execute_plugins=False)
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise translate(exc, f"cannot open the database {path}") from exc

    def migrate(self) -> None:
        """Apply pending schema migrations."""
        migrations.apply(self.db)

    def close(self) -> None:
        self.db.close()
        readers.hand_over(self.path, self._absent)

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One write transaction; taken IMMEDIATE so it never fails half-way on a lock."""
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(exc, "cannot start a transaction") from exc
        try:
            yield self.db
        except sqlite3.Error as exc:
            self._rollback()
            raise translate(exc, "a database write failed") from exc
        except BaseException:
            self._rollback()
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise translate(exc, "cannot commit") from exc

    def _rollback(self) -> None:
        # SQLite may already have rolled back (after SQLITE_FULL, say): a ROLLBACK then
        # raises "no transaction is active" and would hide the error that matters.
        if self.db.conn.in_transaction:
            self.db.conn.execute("ROLLBACK")

    # -- the state machine -------------------------------------------------------------

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

    # -- batch queries -----------------------------------------------------------------

    def batch(self, batch_id: int) -> Batch:
        return Batch.from_row(self.db.table("batches").get(batch_id))

    def latest_batch_for_path(self, path: str) -> Batch | None:
        rows = list(
            self.db.query("SELECT * FROM batches WHERE path = ? ORDER BY id DESC LIMIT 1", [path])
        )
        return Batch.from_row(rows[0]) if rows else None

    def has_older_version(self, batch: Batch) -> bool:
        """Whether an earlier version of the batch's file was recorded (and so superseded)."""
        row = self.db.execute(
            "SELECT 1 FROM batches WHERE path = ? AND id < ? LIMIT 1", [batch.path, batch.id]
        ).fetchone()
        return row is not None

    def next_workable(self, now: float, states: Sequence[BatchState]) -> Batch | None:
        """The oldest batch a stage of ``states`` can move now: in one of them, or failed
        in one of them and due (the supervisor and the worker each see only their own)."""
        marks = ", ".join("?" for _ in states)
        rows = list(
            self.db.query(
                f"SELECT * FROM batches WHERE state IN ({marks})"
                f" OR (state = ? AND resume_state IN ({marks})"
                " AND next_attempt_at IS NOT NULL AND next_attempt_at <= ?)"
                " ORDER BY id LIMIT 1",
                [*states, BatchState.FAILED, *states, now],
            )
        )
        return Batch.from_row(rows[0]) if rows else None

    def has_work(self, states: Sequence[BatchState]) -> bool:
        return self.next_workable(float("inf"), states) is not None

    def requeue_parked(self, now: float, batch_ids: Sequence[int] = ()) -> int:
        """Make parked (and waiting) failed batches due now; returns how many."""
        where = "state = ?"
        params: list[Any] = [BatchState.FAILED]
        if batch_ids:
            where += f" AND id IN ({', '.join('?' for _ in batch_ids)})"
            params += list(batch_ids)
        with self.transaction() as db:
            cursor = db.execute(
                f"UPDATE batches SET next_attempt_at = ?, attempts = 0 WHERE {where}",
                [now, *params],
            )
            return cursor.rowcount

    def set_batch_fields(self, db: Database, batch_id: int, **fields: Any) -> None:
        """Update columns of a batch (inside an ``advance`` effects callback)."""
        db.table("batches").update(batch_id, fields)

    def transitions(self, batch_id: int) -> list[dict[str, Any]]:
        return list(
            self.db.query("SELECT * FROM transitions WHERE batch_id = ? ORDER BY id", [batch_id])
        )

    def unfinished_count(self, workable: Sequence[BatchState]) -> int:
        """Batches a stage will still move (including failed ones)."""
        states = [*workable, BatchState.FAILED]
        marks = ", ".join("?" for _ in states)
        row = self.db.execute(
            f"SELECT count(*) FROM batches WHERE state IN ({marks})",
            states,
        ).fetchone()
        return int(row[0])

    # -- effects: pairs and errors -----------------------------------------------------

    @staticmethod
    def import_pairs(db: Database, batch_id: int, pairs: Sequence[PairRecord], now: float) -> int:
        """Insert pairs by content hash (once each) and every place they came from.

        Returns how many pairs were new to the corpus.
        """
        before = db.execute("SELECT count(*) FROM pairs").fetchone()[0]
        db.conn.executemany(
            "INSERT INTO pairs (hash, question, answer, indicator, session, category,"
            " difficulty, type, tags, sources, extra, first_batch_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING",
            [
                (
                    p.hash,
                    p.question,
                    p.answer,
                    p.indicator,
                    p.session,
                    p.category,
                    p.difficulty,
                    p.type,
                    json.dumps(p.tags),
                    json.dumps(p.sources),
                    json.dumps(p.extra, ensure_ascii=False),
                    batch_id,
                    now,
                )
                for p in pairs
            ],
        )
        after = db.execute("SELECT count(*) FROM pairs").fetchone()[0]
        db.conn.executemany(
            "INSERT OR IGNORE INTO pair_sources (pair_id, batch_id, position, item_id)"
            " SELECT id, ?, ?, ? FROM pairs WHERE hash = ?",
            [(batch_id, p.position, p.item_id, p.hash) for p in pairs],
        )
        return int(after - before)

    @staticmethod
    def record_errors(db: Database, batch_id: int, errors: Sequence[PairError]) -> None:
        db.conn.executemany(
            "INSERT INTO batch_errors (batch_id, position, reason) VALUES (?, ?, ?)",
            [(batch_id, e.position, e.reason) for e in errors],
        )

    def batch_errors(self, batch_id: int) -> list[PairError]:
        return [
            PairError(r["position"], r["reason"])
            for r in self.db.query(
                "SELECT position, reason FROM batch_errors WHERE batch_id = ? ORDER BY id",
                [batch_id],
            )
        ]

    # -- signals and progress ----------------------------------------------------------

    def record_signal(
        self, *, kind: str, agent: str, path: str, sha256: str, body: str, now: float
    ) -> bool:
        """Record a signal file once per content; True when it is new."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO signals (kind, agent, path, sha256, body, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [kind, agent, path, sha256, body, now],
            )
            return cursor.rowcount == 1

    def unhandled_signals(self, kind: str) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT * FROM signals WHERE kind = ? AND handled_at IS NULL ORDER BY id", [kind]
            )
        )

    def mark_signal_handled(self, signal_id: int, now: float) -> None:
        with self.transaction() as db:
            db.execute("UPDATE signals SET handled_at = ? WHERE id = ?", [now, signal_id])

    def record_progress(self, agent: str, values: dict[str, Any]) -> bool:
        """Store the agent's latest status.txt; True when it changed."""
        existing = self.db.table("progress").get(agent) if self._has_progress(agent) else None
        if existing and existing["sha256"] == values["sha256"]:
            return False
        with self.transaction() as db:
            db.table("progress").upsert({"agent": agent, **values}, pk="agent")
        return True

    def _has_progress(self, agent: str) -> bool:
        return bool(self.db.execute("SELECT 1 FROM progress WHERE agent = ?", [agent]).fetchone())

    # -- the worker's progress (shown by `inboxd status`) -----------------------------

    def set_task_progress(
        self,
        task: str,
        done: int,
        total: int | None,
        *,
        unit: str = "",
        detail: str = "",
        worker: str = progress_db.WORKER,
        now: float | None = None,
    ) -> None:
        """Record what ``worker`` is doing now and how far it has got."""
        with self.transaction() as db:
            progress_db.set_task(
                db,
                task,
                done,
                total,
                unit=unit,
                detail=detail,
                worker=worker,
                now=time.time() if now is None else now,
            )

    def clear_task_progress(self, worker: str = progress_db.WORKER) -> None:
        """``worker`` is idle: it has no current task."""
        with self.transaction() as db:
            progress_db.clear_task(db, worker)

    def task_progress(self) -> list[dict[str, Any]]:
        """Every worker's current task (worker, pid, task, done, total, unit, detail,
        started_at, updated_at); empty when all are idle."""
        return progress_db.tasks(self.db)

    def batch_totals(
        self, since: float, resting: Sequence[BatchState]
    ) -> dict[str, tuple[int, int]]:
        """State -> (batches, valid pairs) over the batches of a run: those not in a
        ``resting`` state, and those that came to rest at or after ``since``."""
        return progress_db.batch_totals(self.db, since, [str(state) for state in resting])


def translate(exc: sqlite3.Error, what: str) -> Exception:
    """Map an sqlite3 error to ours: lock and disk trouble are transient."""
    message = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError) and any(
        marker in message for marker in _RETRYABLE_SQLITE
    ):
        return TransientError(f"{what}: {exc}")
    return PermanentError(f"{what}: {exc}")
