"""Pipeline stages. A stage takes a batch in its ``source`` state and moves it one
state on through ``store.advance``. ``STAGES`` is the one table that wires them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from daemon.config import Config
from daemon.records import Batch
from daemon.states import BatchState
from daemon.store import Store
from daemon.validation import IndicatorResolver


@dataclass
class StageContext:
    """What every stage may use; built once by the service."""

    config: Config
    store: Store
    log: Any
    resolve_indicator: IndicatorResolver | None = None
    services: dict[str, Any] = field(default_factory=dict)  # providers added by later stages


class Stage(Protocol):
    def __call__(self, batch: Batch, ctx: StageContext, now: float) -> Batch: ...


def default_stages() -> dict[BatchState, Stage]:
    """The stage that moves a batch out of each state (imported here to avoid cycles)."""
    from daemon.stages.dedupe import dedupe
    from daemon.stages.embed import embed
    from daemon.stages.indexing import index_batch
    from daemon.stages.ingest import import_pairs
    from daemon.stages.score import score
    from daemon.stages.settle import settle
    from daemon.stages.validate import validate

    return {
        BatchState.DETECTED: settle,
        BatchState.SETTLED: validate,
        BatchState.VALIDATED: import_pairs,
        BatchState.IMPORTED: embed,
        BatchState.EMBEDDED: dedupe,
        BatchState.DEDUPLICATED: score,
        BatchState.SCORED: index_batch,
    }
