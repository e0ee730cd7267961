"""validated -> imported: the valid pairs into the corpus, once each by content hash."""

from __future__ import annotations

from daemon.core.records import Batch
from daemon.services import Services
from daemon.stages.validate import load_pairs
from daemon.states import BatchState
from daemon.store import Connection


def import_pairs(batch: Batch, ctx: Services, now: float) -> Batch:
    """Insert the pairs and their sources in the transaction that marks the batch."""
    pairs, _ = load_pairs(batch, ctx)

    def effects(db: Connection) -> dict[str, int]:
        new = ctx.store.import_pairs(db, batch.id, pairs, now)
        ctx.store.set_batch_fields(db, batch.id, pairs_new=new)
        return {"pairs": len(pairs), "pairs_new": new}

    return ctx.store.advance(batch, BatchState.IMPORTED, now=now, effects=effects)
