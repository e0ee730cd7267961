"""The state machine: the table allows exactly the design's moves, and a real Store
driven through random create/advance/fail/resume/supersede sequences keeps its audit
trail consistent with it."""

from __future__ import annotations

import dataclasses
import itertools
import shutil
import tempfile
from pathlib import Path

import pytest
from builders import open_store
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from daemon.core.errors import InvalidTransitionError
from daemon.states import PIPELINE, TERMINAL, TRANSITIONS, BatchState, allowed, next_state

S = BatchState
NON_TERMINAL = [s for s in BatchState if s not in TERMINAL]


def design_moves() -> set[tuple[BatchState, BatchState]]:
    """The moves DESIGN.md draws, spelled out one by one."""
    moves = set(itertools.pairwise(PIPELINE))  # the happy path
    moves |= {(S.DETECTED, S.REJECTED), (S.SETTLED, S.REJECTED)}  # bad input
    moves |= {(s, S.FAILED) for s in NON_TERMINAL}  # any step -> failed (again, too)
    moves |= {(S.FAILED, s) for s in PIPELINE[:-1]}  # resume where it failed
    moves |= {(s, S.SUPERSEDED) for s in BatchState if s is not S.SUPERSEDED}
    return moves


def test_happy_path_is_the_designed_order() -> None:
    """The happy path runs detected to indexed through the six stages, in order."""
    assert [s.value for s in PIPELINE] == [
        "detected",
        "settled",
        "validated",
        "imported",
        "embedded",
        "deduplicated",
        "scored",
        "indexed",
    ]


def test_table_allows_exactly_the_designed_moves() -> None:
    """TRANSITIONS holds every designed move and nothing else."""
    table = {(here, there) for here, targets in TRANSITIONS.items() for there in targets}
    assert table == design_moves()
    assert set(TRANSITIONS) == set(BatchState)


@pytest.mark.parametrize("here", list(BatchState))
@pytest.mark.parametrize("there", list(BatchState))
def test_allowed_agrees_with_the_table(here: BatchState, there: BatchState) -> None:
    """allowed(here, there) is exactly membership in the table."""
    assert allowed(here, there) is ((here, there) in design_moves())


def test_rejected_only_from_detected_or_settled() -> None:
    """Only a batch not yet validated can be rejected as bad input."""
    assert {s for s in BatchState if allowed(s, S.REJECTED)} == {S.DETECTED, S.SETTLED}


def test_terminal_states_only_leave_for_superseded() -> None:
    """indexed and rejected rest until a newer version supersedes them; superseded is final."""
    assert TRANSITIONS[S.INDEXED] == TRANSITIONS[S.REJECTED] == {S.SUPERSEDED}
    assert TRANSITIONS[S.SUPERSEDED] == frozenset()


def test_a_new_batch_can_only_start_detected() -> None:
    """allowed(None, ...) is true for detected alone."""
    assert [s for s in BatchState if allowed(None, s)] == [S.DETECTED]


def test_next_state_walks_the_happy_path_and_stops_off_it() -> None:
    """next_state follows PIPELINE and is None at its end and off it."""
    assert [next_state(s) for s in PIPELINE[:-1]] == list(PIPELINE[1:])
    for state in (S.INDEXED, S.REJECTED, S.FAILED, S.SUPERSEDED):
        assert next_state(state) is None


# -- a real store under random operations ----------------------------------------------

PATHS = ("outbox/a/sma_qa_pairs.json", "outbox/a/rsi_qa_pairs.json")


class StoreMachine(RuleBasedStateMachine):
    """Random operations on a Store on a temp SQLite file, checked against a model."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="inboxd-sm-"))
        self.store = open_store(self.dir / "inboxd.db")
        self.model: dict[int, BatchState] = {}
        self.paths: dict[int, str] = {}
        self.now = 0.0
        self.versions = 0

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _tick(self) -> float:
        self.now += 1
        return self.now

    def _snapshot(self, batch_id: int) -> tuple[object, int]:
        row = self.store.db.table("batches").get(batch_id)
        return row, len(self.store.transitions(batch_id))

    def _create(self, path: str) -> None:
        self.versions += 1
        batch, superseded = self.store.create_batch(
            agent="a", path=path, sha256=f"{self.versions:064x}", size=1, now=self._tick()
        )
        expected = [i for i, s in self.model.items() if self.paths[i] == path and s != S.SUPERSEDED]
        assert superseded == expected
        for old in superseded:
            self.model[old] = S.SUPERSEDED
        self.model[batch.id], self.paths[batch.id] = S.DETECTED, path

    @rule(path=st.sampled_from(PATHS))
    def create(self, path: str) -> None:
        """A version of a file is detected."""
        self._create(path)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def supersede(self, data: st.DataObject) -> None:
        """A newer version of an existing batch's file arrives."""
        batch_id = data.draw(st.sampled_from(sorted(self.model)))
        self._create(self.paths[batch_id])

    # Entering failed is fail()'s job (it records where to resume), so advance() is not
    # asked for it here; see test_store.py for advance(..., FAILED).
    @precondition(lambda self: self.model)
    @rule(data=st.data(), to=st.sampled_from([s for s in BatchState if s is not S.FAILED]))
    def advance(self, data: st.DataObject, to: BatchState) -> None:
        """Any requested move either happens (if allowed) or is refused with no trace."""
        batch = self.store.batch(data.draw(st.sampled_from(sorted(self.model))))
        before = self._snapshot(batch.id)
        if allowed(batch.state, to):
            moved = self.store.advance(batch, to, now=self._tick())
            assert moved.state is to
            self.model[batch.id] = to
        else:
            with pytest.raises(InvalidTransitionError):
                self.store.advance(batch, to, now=self._tick())
            assert self._snapshot(batch.id) == before

    @precondition(lambda self: self.model)
    @rule(data=st.data(), to=st.sampled_from(list(BatchState)))
    def advance_stale(self, data: st.DataObject, to: BatchState) -> None:
        """A caller holding an out-of-date Batch is refused, whatever the move."""
        batch = self.store.batch(data.draw(st.sampled_from(sorted(self.model))))
        other = data.draw(st.sampled_from([s for s in BatchState if s is not batch.state]))
        before = self._snapshot(batch.id)
        with pytest.raises(InvalidTransitionError):
            self.store.advance(dataclasses.replace(batch, state=other), to, now=self._tick())
        assert self._snapshot(batch.id) == before

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        """A transient failure moves a non-terminal batch to failed, remembering where."""
        batch = self.store.batch(data.draw(st.sampled_from(sorted(self.model))))
        before = self._snapshot(batch.id)
        kwargs = {"max_attempts": 3, "base_seconds": 1.0, "max_seconds": 4.0}
        if batch.state in TERMINAL:
            with pytest.raises(InvalidTransitionError):
                self.store.fail(batch, "boom", now=self._tick(), **kwargs)
            assert self._snapshot(batch.id) == before
            return
        failed = self.store.fail(batch, "boom", now=self._tick(), **kwargs)
        assert failed.state is S.FAILED
        assert failed.attempts == batch.attempts + 1
        assert failed.last_error == "boom"
        want = batch.resume_state if batch.state is S.FAILED else batch.state
        assert failed.resume_state is want
        assert (failed.next_attempt_at is None) == (failed.attempts >= 3)
        self.model[batch.id] = S.FAILED

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        """A failed batch resumes at the state it failed in; others cannot resume."""
        batch = self.store.batch(data.draw(st.sampled_from(sorted(self.model))))
        before = self._snapshot(batch.id)
        if batch.state is not S.FAILED:
            with pytest.raises(InvalidTransitionError):
                self.store.resume(batch, now=self._tick())
            assert self._snapshot(batch.id) == before
            return
        resumed = self.store.resume(batch, now=self._tick())
        assert resumed.state is batch.resume_state
        assert resumed.resume_state is None and resumed.next_attempt_at is None
        self.model[batch.id] = resumed.state

    @invariant()
    def db_matches_the_model(self) -> None:
        """Every batch is in the state the model predicts."""
        for batch_id, state in self.model.items():
            assert self.store.batch(batch_id).state is state

    @invariant()
    def state_is_the_last_transition(self) -> None:
        """A batch's state always equals the to_state of its last transition row."""
        for batch_id in self.model:
            rows = self.store.transitions(batch_id)
            assert rows[0]["from_state"] is None and rows[0]["to_state"] == S.DETECTED
            assert rows[-1]["to_state"] == self.store.batch(batch_id).state

    @invariant()
    def every_recorded_transition_is_allowed(self) -> None:
        """The audit trail holds only moves the table allows, chained end to start."""
        for batch_id in self.model:
            rows = self.store.transitions(batch_id)
            for previous, row in itertools.pairwise(rows):
                here = BatchState(row["from_state"])
                assert here == previous["to_state"]
                assert allowed(here, BatchState(row["to_state"]))

    @invariant()
    def one_live_version_per_path(self) -> None:
        """Of all versions of a file, at most one is not superseded: the newest."""
        for path in PATHS:
            ids = sorted(i for i, p in self.paths.items() if p == path)
            live = [i for i in ids if self.model[i] is not S.SUPERSEDED]
            assert live in ([], ids[-1:])


StoreMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None, database=None
)
TestStoreStateMachine = StoreMachine.TestCase
