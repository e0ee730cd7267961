"""Named queries on batches: one by id or path, the next one a stage can move, the
failed ones to re-queue, their counts and transitions; and the effects that store a
batch's pairs and validation errors inside its transition."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlite_utils import Database

from daemon.core.records import Batch, PairError, PairRecord
from daemon.states import BatchState
from daemon.store.base import StoreBase


class BatchQueries(StoreBase):
    """Reading batches and writing what belongs to them."""

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

    def pair_counts(self, batch_id: int) -> dict[str, int | None]:
        """What validation and import counted for a batch (None: not counted yet)."""
        row = self.db.execute(
            "SELECT pairs_total, pairs_valid, pairs_invalid, pairs_new FROM batches WHERE id = ?",
            [batch_id],
        ).fetchone()
        keys = ("pairs_total", "pairs_valid", "pairs_invalid", "pairs_new")
        return dict(zip(keys, row, strict=True))

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
