"""The batch state machine as data: the states and the one table of allowed moves.

A batch is one version (sha256) of one delivered file. ``store.advance`` is the only
function that moves a batch, and it checks every move against ``TRANSITIONS``.
"""

from __future__ import annotations

from enum import StrEnum


class BatchState(StrEnum):
    DETECTED = "detected"
    SETTLED = "settled"
    VALIDATED = "validated"
    IMPORTED = "imported"
    EMBEDDED = "embedded"
    DEDUPLICATED = "deduplicated"
    SCORED = "scored"
    INDEXED = "indexed"
    REJECTED = "rejected"
    FAILED = "failed"
    SUPERSEDED = "superseded"


S = BatchState

#: The happy path, in order. Each stage moves a batch one step along it.
PIPELINE: tuple[BatchState, ...] = (
    S.DETECTED,
    S.SETTLED,
    S.VALIDATED,
    S.IMPORTED,
    S.EMBEDDED,
    S.DEDUPLICATED,
    S.SCORED,
    S.INDEXED,
)

#: The intake: the supervisor moves batches out of these states (up to ``imported``),
#: steps of milliseconds that must never wait behind long work. The worker moves them
#: from ``imported`` on (embedding, de-duplication, scoring, indexing).
INTAKE: frozenset[BatchState] = frozenset({S.DETECTED, S.SETTLED, S.VALIDATED})

#: States a batch rests in: no stage picks it up again on its own.
TERMINAL: frozenset[BatchState] = frozenset({S.INDEXED, S.REJECTED, S.SUPERSEDED})


#: Every allowed move, in one place: ``to in TRANSITIONS[from]``. A failed batch
#: resumes at the state it failed in (kept in the batch's ``resume_state``).
TRANSITIONS: dict[BatchState, frozenset[BatchState]] = {
    S.DETECTED: frozenset({S.SETTLED, S.REJECTED, S.FAILED, S.SUPERSEDED}),
    S.SETTLED: frozenset({S.VALIDATED, S.REJECTED, S.FAILED, S.SUPERSEDED}),
    S.VALIDATED: frozenset({S.IMPORTED, S.FAILED, S.SUPERSEDED}),
    S.IMPORTED: frozenset({S.EMBEDDED, S.FAILED, S.SUPERSEDED}),
    S.EMBEDDED: frozenset({S.DEDUPLICATED, S.FAILED, S.SUPERSEDED}),
    S.DEDUPLICATED: frozenset({S.SCORED, S.FAILED, S.SUPERSEDED}),
    S.SCORED: frozenset({S.INDEXED, S.FAILED, S.SUPERSEDED}),
    S.INDEXED: frozenset({S.SUPERSEDED}),
    S.REJECTED: frozenset({S.SUPERSEDED}),
    # failed -> failed: Store.fail records a failed batch failing again (attempts + 1).
    S.FAILED: frozenset(
        {
            S.FAILED,
            S.DETECTED,
            S.SETTLED,
            S.VALIDATED,
            S.IMPORTED,
            S.EMBEDDED,
            S.DEDUPLICATED,
            S.SCORED,
            S.SUPERSEDED,
        }
    ),
    S.SUPERSEDED: frozenset(),
}


def next_state(state: BatchState) -> BatchState | None:
    """The state after ``state`` on the happy path, or None at its end."""
    if state not in PIPELINE or state is S.INDEXED:
        return None
    return PIPELINE[PIPELINE.index(state) + 1]


def allowed(here: BatchState | None, there: BatchState) -> bool:
    """Whether a batch may move from ``here`` to ``there`` (None: a new batch)."""
    if here is None:
        return there is S.DETECTED
    return there in TRANSITIONS[here]
