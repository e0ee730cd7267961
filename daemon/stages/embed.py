"""imported -> embedded: vectors for every question and answer the corpus lacks.

The work is done in chunks of ``[worker] chunk_texts`` texts: each chunk's vectors are
committed as it finishes (they are cached by text hash and model, so a chunk is never
embedded again, across restarts too), and the batch stays ``imported`` until the last
chunk moves it on. A 5,000-pair file is then a few hundred short steps, each one a
point where the worker reports progress and can stop.
"""

from __future__ import annotations

from daemon.core.records import Batch
from daemon.core.textid import text_hash
from daemon.services import Services
from daemon.states import BatchState
from daemon.store import Connection, meta
from daemon.store import corpus as q


def embed(batch: Batch, ctx: Services, now: float) -> Batch:
    """Embed the next chunk of the batch's texts that no earlier batch embedded; move the
    batch on once none is left."""
    embedder = ctx.embedder
    texts: dict[str, str] = {}
    for pair in q.batch_pairs(ctx.store.db, batch.id):
        for text in (pair["question"], pair["answer"]):
            texts.setdefault(text_hash(text), text)
    known = q.known_text_hashes(ctx.store.db, embedder.model_id, list(texts))
    todo = [h for h in texts if h not in known]
    chunk = todo[: ctx.config.worker.chunk_texts]
    vectors = (
        dict(zip(chunk, embedder.embed_documents([texts[h] for h in chunk]), strict=True))
        if chunk
        else {}
    )
    # How many texts this batch embedded in its earlier chunks (kept in the DB, so the
    # count survives a restart between chunks).
    key = f"embedded:{batch.id}"
    before = int(meta.value(ctx.store.db, key) or 0)
    if len(todo) > len(chunk):
        with ctx.store.transaction() as db:
            q.save_embeddings(db, embedder.model_id, vectors, now)
            meta.set_value(db, key, str(before + len(vectors)))
        return batch

    def effects(db: Connection) -> dict[str, object]:
        q.save_embeddings(db, embedder.model_id, vectors, now)
        meta.delete(db, key)
        embedded = before + len(vectors)
        return {"texts": len(texts), "embedded": embedded, "model": embedder.model_id}

    return ctx.store.advance(batch, BatchState.EMBEDDED, now=now, effects=effects)
