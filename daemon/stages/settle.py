"""detected -> settled: freeze the version's bytes in the archive."""

from __future__ import annotations

import hashlib
import os

from daemon.core.errors import InputError, TransientError
from daemon.core.records import Batch
from daemon.ingest import archive
from daemon.ingest.layout import open_regular
from daemon.services import Services
from daemon.stages.reject import reject
from daemon.states import BatchState


def read_file(ctx: Services, relpath: str) -> bytes:
    """The bytes of an agent file, refusing links out of the root and non-files."""
    fd = open_regular(ctx.config.root, ctx.config.root / relpath)
    with os.fdopen(fd, "rb") as handle:
        return handle.read(ctx.config.limits.max_file_bytes + 1)


def settle(batch: Batch, ctx: Services, now: float) -> Batch:
    """Archive the batch's content; reject it if it cannot be read at all."""
    limit = ctx.config.limits.max_file_bytes
    if batch.size > limit:
        return reject(
            batch,
            ctx,
            now,
            InputError(
                batch.path,
                f"file is {batch.size:,} bytes, over the limit of {limit:,}",
                f"byte {limit + 1:,}",
            ),
        )
    try:
        data = read_file(ctx, batch.path)
    except InputError as exc:
        return reject(batch, ctx, now, exc)
    except FileNotFoundError as exc:
        raise TransientError(f"{batch.path} vanished before it was archived") from exc
    if hashlib.sha256(data).hexdigest() != batch.sha256:
        # Changed since it was detected: the newer version gets its own batch.
        raise TransientError(f"{batch.path} changed before it was archived")
    target = archive.store(ctx.config.archive_dir, data, batch.path)
    relative = str(target.relative_to(ctx.config.state_dir))
    return ctx.store.advance(
        batch,
        BatchState.SETTLED,
        now=now,
        detail={"archive": relative},
        effects=lambda db: ctx.store.set_batch_fields(db, batch.id, archive_path=relative),
    )
