"""Pipeline stages. A stage takes a batch in its ``source`` state and moves it one
state on through ``store.advance``. ``STAGES`` is the one table that wires them."""

from __future__ import annotations

from typing import Protocol

from daemon.core.records import Batch
from daemon.services import Services
from daemon.stages.dedupe import dedupe
from daemon.stages.embed import embed
from daemon.stages.indexing import index_batch
from daemon.stages.ingest import import_pairs
from daemon.stages.score import score
from daemon.stages.settle import settle
from daemon.stages.validate import validate
from daemon.states import BatchState


class Stage(Protocol):
    def __call__(self, batch: Batch, ctx: Services, now: float) -> Batch: ...


#: The stage that moves a batch out of each state.
STAGES: dict[BatchState, Stage] = {
    BatchState.DETECTED: settle,
    BatchState.SETTLED: validate,
    BatchState.VALIDATED: import_pairs,
    BatchState.IMPORTED: embed,
    BatchState.EMBEDDED: dedupe,
    BatchState.DEDUPLICATED: score,
    BatchState.SCORED: index_batch,
}


def default_stages() -> dict[BatchState, Stage]:
    """A fresh copy of :data:`STAGES` (the service may run a subset)."""
    return dict(STAGES)
