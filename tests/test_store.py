"""The store on a real SQLite file: pairs once by content hash, new versions supersede
old ones, failures back off and park, and an advance is all or nothing."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import new_batch, open_store, row_counts, walk_to
from sqlite_utils import Database

from daemon.core.errors import InvalidTransitionError, PermanentError
from daemon.core.records import PairRecord
from daemon.core.textid import pair_hash
from daemon.states import BatchState
from daemon.store import Store

S = BatchState
PATH = "outbox/agent1/sma_qa_pairs.json"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A migrated store on ``tmp_path/inboxd.db``."""
    store = open_store(tmp_path / "inboxd.db")
    yield store
    store.close()


def record(n: int, position: str, **fields: object) -> PairRecord:
    question, answer = f"Question {n}?", f"Answer {n}."
    return PairRecord(
        hash=pair_hash(question, answer),
        question=question,
        answer=answer,
        position=position,
        **fields,  # type: ignore[arg-type]
    )


def import_into(store: Store, batch_id: int, records: list[PairRecord]) -> int:
    with store.transaction() as db:
        return store.import_pairs(db, batch_id, records, now=1.0)


# -- pairs ------------------------------------------------------------------------------


def test_import_pairs_stores_each_pair_once_and_every_source(store: Store) -> None:
    """A pair delivered by two files is one row with a source row per file and position."""
    first = new_batch(store, "outbox/agent1/sma_qa_pairs.json", "1" * 64)
    second = new_batch(store, "outbox/agent1/session_02/ema_qa_pairs.json", "2" * 64)
    assert import_into(store, first.id, [record(1, "[0]"), record(2, "[1]", item_id="a2")]) == 2
    assert import_into(store, second.id, [record(2, "qa_pairs[5]"), record(3, "qa_pairs[6]")]) == 1
    rows = {r["question"]: r for r in store.db.query("SELECT * FROM pairs")}
    assert sorted(rows) == ["Question 1?", "Question 2?", "Question 3?"]
    assert rows["Question 2?"]["first_batch_id"] == first.id
    sources = list(
        store.db.query(
            "SELECT p.question, s.batch_id, s.position, s.item_id FROM pair_sources s"
            " JOIN pairs p ON p.id = s.pair_id ORDER BY p.question, s.batch_id"
        )
    )
    assert [(s["question"], s["batch_id"], s["position"], s["item_id"]) for s in sources] == [
        ("Question 1?", first.id, "[0]", None),
        ("Question 2?", first.id, "[1]", "a2"),
        ("Question 2?", second.id, "qa_pairs[5]", None),
        ("Question 3?", second.id, "qa_pairs[6]", None),
    ]


def test_import_pairs_again_for_the_same_batch_adds_nothing(store: Store) -> None:
    """Replaying an import (a crash before the state was written) is a no-op."""
    batch = new_batch(store)
    records = [record(1, "[0]"), record(2, "[1]")]
    assert import_into(store, batch.id, records) == 2
    before = row_counts(store, ("pairs", "pair_sources"))
    assert import_into(store, batch.id, records) == 0
    assert row_counts(store, ("pairs", "pair_sources")) == before


def test_import_pairs_keeps_fields_and_unknown_keys(store: Store) -> None:
    """Tags, sources and extra are stored as JSON, unknown keys verbatim (non-ASCII too)."""
    batch = new_batch(store)
    extra = {"formula": "Σ close / n", "params": {"n": [10, 20]}}
    rec = record(1, "[0]", tags=["trend"], sources=["s"], extra=extra, indicator="sma", session=2)
    import_into(store, batch.id, [rec])
    row = next(iter(store.db.query("SELECT * FROM pairs")))
    assert (row["indicator"], row["session"]) == ("sma", 2)
    assert json.loads(row["tags"]) == ["trend"] and json.loads(row["sources"]) == ["s"]
    assert json.loads(row["extra"]) == extra
    assert "Σ" in row["extra"]


# -- versions ---------------------------------------------------------------------------


def test_new_version_of_a_path_supersedes_every_older_live_version(store: Store) -> None:
    """create_batch for a path moves its older batches (any state) to superseded."""
    old = walk_to(store, new_batch(store, PATH, "1" * 64), S.VALIDATED)
    rejected = store.advance(new_batch(store, PATH, "2" * 64), S.REJECTED, now=1)
    other = new_batch(store, "outbox/agent1/rsi_qa_pairs.json", "3" * 64)
    assert store.batch(old.id).state is S.SUPERSEDED  # the second version superseded it
    newest, superseded = store.create_batch(
        agent="agent1", path=PATH, sha256="4" * 64, size=1, now=5
    )
    assert superseded == [rejected.id]
    assert store.batch(rejected.id).state is S.SUPERSEDED
    assert store.batch(other.id).state is S.DETECTED
    assert newest.state is S.DETECTED
    last = store.transitions(rejected.id)[-1]
    assert (last["from_state"], last["to_state"]) == (S.REJECTED, S.SUPERSEDED)
    assert json.loads(last["detail"]) == {"by": newest.id}
    assert store.latest_batch_for_path(PATH) == newest


def test_superseded_pairs_stay_in_the_database(store: Store) -> None:
    """Superseding a version keeps the pairs it imported."""
    batch = walk_to(store, new_batch(store, PATH, "1" * 64), S.VALIDATED)
    store.advance(
        batch,
        S.IMPORTED,
        now=1,
        effects=lambda db: {"n": store.import_pairs(db, batch.id, [record(1, "[0]")], 1)},
    )
    new_batch(store, PATH, "2" * 64)
    assert row_counts(store, ("pairs", "pair_sources")) == {"pairs": 1, "pair_sources": 1}


# -- failures ---------------------------------------------------------------------------

RETRY = {"max_attempts": 4, "base_seconds": 2.0, "max_seconds": 10.0}


def test_fail_backs_off_exponentially_then_parks(store: Store) -> None:
    """Attempt n waits base * 2**(n-1) (with jitter in [1/2, 1], capped), then parks."""
    batch = walk_to(store, new_batch(store), S.VALIDATED)
    now = 100.0
    for attempt, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0)]:
        failed = store.fail(batch, f"disk full {attempt}", now=now, **RETRY)
        assert (failed.state, failed.resume_state, failed.attempts) == (
            S.FAILED,
            S.VALIDATED,
            attempt,
        )
        assert failed.next_attempt_at is not None
        assert ceiling / 2 <= failed.next_attempt_at - now <= ceiling
        assert store.next_workable(now, [S.VALIDATED]) is None  # not due yet
        assert store.next_workable(failed.next_attempt_at, [S.VALIDATED]) == failed
        batch = store.resume(failed, now=now)
        assert batch.state is S.VALIDATED
    parked = store.fail(batch, "disk full 4", now=now, **RETRY)
    assert parked.attempts == 4 and parked.next_attempt_at is None
    assert parked.last_error == "disk full 4"
    assert store.next_workable(float("inf"), [S.VALIDATED]) is None


def test_backoff_is_capped_at_max_seconds(store: Store) -> None:
    """Late attempts wait at most max_seconds."""
    batch = new_batch(store)
    for _ in range(5):
        batch = store.fail(batch, "busy", now=0, max_attempts=99, base_seconds=2, max_seconds=10)
    assert batch.next_attempt_at is not None and 5 <= batch.next_attempt_at <= 10


def test_failing_again_while_failed_keeps_where_to_resume(store: Store) -> None:
    """fail() on a failed batch counts the attempt, records failed -> failed, keeps resume."""
    batch = walk_to(store, new_batch(store), S.SETTLED)
    failed = store.fail(store.fail(batch, "a", now=1, **RETRY), "b", now=2, **RETRY)
    assert (failed.state, failed.resume_state, failed.attempts) == (S.FAILED, S.SETTLED, 2)
    last = store.transitions(batch.id)[-1]
    assert (last["from_state"], last["to_state"]) == (S.FAILED, S.FAILED)


def test_requeue_parked_makes_failed_batches_due_now(store: Store) -> None:
    """retry: parked (and waiting) batches become due at once with their attempts reset."""
    once = {"max_attempts": 1, "base_seconds": 1.0, "max_seconds": 1.0}
    parked = store.fail(new_batch(store, PATH, "1" * 64), "x", now=0, **once)
    other = store.fail(new_batch(store, "outbox/a/b.json", "2" * 64), "x", now=0, **once)
    assert parked.next_attempt_at is None
    assert store.requeue_parked(50.0, [parked.id]) == 1
    assert store.batch(other.id).next_attempt_at is None
    again = store.batch(parked.id)
    assert (again.next_attempt_at, again.attempts) == (50.0, 0)
    assert store.next_workable(50.0, [S.DETECTED]) == again
    assert store.requeue_parked(60.0) == 2
    assert store.batch(other.id).next_attempt_at == 60.0


def test_requeue_parked_leaves_other_states_alone(store: Store) -> None:
    """Only failed batches are touched."""
    batch = new_batch(store)
    assert store.requeue_parked(1.0) == 0
    assert store.batch(batch.id) == batch


def test_resume_without_a_failure_is_refused(store: Store) -> None:
    """A batch that never failed has nothing to resume."""
    with pytest.raises(InvalidTransitionError):
        store.resume(new_batch(store), now=1)


def test_advance_into_failed_is_refused_or_resumable(store: Store) -> None:
    """Entering failed through advance() either is refused or leaves a resumable batch."""
    batch = walk_to(store, new_batch(store), S.SETTLED)
    with contextlib.suppress(InvalidTransitionError):
        failed = store.advance(batch, S.FAILED, now=1)
        assert store.resume(failed, now=2).state is S.SETTLED
        return
    assert store.batch(batch.id).state is S.SETTLED


def test_fail_with_a_stale_batch_does_not_revive_a_superseded_batch(store: Store) -> None:
    """A failure reported for a batch that was superseded meanwhile leaves it superseded."""
    stale = new_batch(store, PATH, "1" * 64)
    new_batch(store, PATH, "2" * 64)  # supersedes it
    with contextlib.suppress(InvalidTransitionError):
        store.fail(stale, "late", now=1, **RETRY)
    assert store.batch(stale.id).state is S.SUPERSEDED


# -- all or nothing ---------------------------------------------------------------------


def test_advance_whose_effects_raise_leaves_no_trace(store: Store) -> None:
    """Effects that fail after writing pairs roll back the pairs, the state and the audit row."""
    batch = walk_to(store, new_batch(store), S.VALIDATED)
    before = row_counts(store, ("transitions", "pairs", "pair_sources"))

    def effects(db: Database) -> dict[str, int]:
        store.import_pairs(db, batch.id, [record(1, "[0]"), record(2, "[1]")], 1.0)
        store.set_batch_fields(db, batch.id, pairs_new=2)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.advance(batch, S.IMPORTED, now=9, effects=effects)
    assert store.batch(batch.id) == batch
    assert store.db.table("batches").get(batch.id)["pairs_new"] is None
    assert row_counts(store, ("transitions", "pairs", "pair_sources")) == before


def test_sql_error_in_effects_is_translated_and_rolled_back(store: Store) -> None:
    """An SQLite error inside effects becomes PermanentError; nothing is written."""
    batch = new_batch(store)
    before = row_counts(store)
    with pytest.raises(PermanentError, match="a database write failed"):
        store.advance(
            batch, S.SETTLED, now=1, effects=lambda db: db.execute("INSERT INTO nowhere VALUES (1)")
        )
    assert store.batch(batch.id) == batch and row_counts(store) == before


def test_advance_records_state_detail_and_effects_in_one_row(store: Store) -> None:
    """A successful advance writes the state, the effects' detail and one transition row."""
    batch = new_batch(store)
    moved = store.advance(
        batch, S.SETTLED, now=7, detail={"archive": "ab/x.json"}, effects=lambda db: {"bytes": 3}
    )
    assert moved.state is S.SETTLED
    row = store.transitions(batch.id)[-1]
    assert (row["from_state"], row["to_state"], row["at"]) == (S.DETECTED, S.SETTLED, 7)
    assert json.loads(row["detail"]) == {"archive": "ab/x.json", "bytes": 3}


def test_advance_refuses_a_disallowed_move_and_a_stale_batch(store: Store) -> None:
    """detected -> indexed, or a Batch whose state is out of date, change nothing."""
    batch = new_batch(store)
    before = row_counts(store)
    with pytest.raises(InvalidTransitionError, match="not allowed"):
        store.advance(batch, S.INDEXED, now=1)
    with pytest.raises(InvalidTransitionError, match="is detected, not settled"):
        store.advance(dataclasses.replace(batch, state=S.SETTLED), S.VALIDATED, now=1)
    assert store.batch(batch.id) == batch and row_counts(store) == before


def test_store_reopens_with_its_data(tmp_path: Path) -> None:
    """Closing and reopening the file (a restart) finds every batch where it was."""
    first = open_store(tmp_path / "inboxd.db")
    batch = walk_to(first, new_batch(first), S.VALIDATED)
    first.close()
    again = open_store(tmp_path / "inboxd.db")  # migrations are idempotent
    try:
        assert again.batch(batch.id) == batch
        assert len(again.transitions(batch.id)) == 3
    finally:
        again.close()
