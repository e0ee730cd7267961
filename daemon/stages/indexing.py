"""scored -> indexed: the index holds exactly the active, checked pairs; saved atomically."""

from __future__ import annotations

from daemon.core.logs import Event
from daemon.core.records import Batch
from daemon.refine.corpus import sync_index
from daemon.services import Services
from daemon.states import BatchState


def bring_index_in_step(ctx: Services) -> tuple[int, int]:
    """Make the index hold exactly the active, checked pairs and save it if the saved
    copy differs; returns (added, removed)."""
    index = ctx.index
    added, removed = sync_index(ctx.store, index)
    # The de-duplication stage may already have changed the index (pairs of a superseded
    # version leave it there): save whenever the saved copy holds other ids.
    if added or removed or not index.saved_in(ctx.config.index_dir):
        index.save(ctx.config.index_dir)
        ctx.log.debug(Event.INDEX_SAVED, count=len(index), added=added, removed=removed)
    return added, removed


def index_batch(batch: Batch, ctx: Services, now: float) -> Batch:
    """Bring the index in step with the DB (adds this batch, drops new duplicates), save."""
    index = ctx.index
    added, removed = bring_index_in_step(ctx)
    return ctx.store.advance(
        batch,
        BatchState.INDEXED,
        now=now,
        detail={"added": added, "removed": removed, "size": len(index)},
    )
