"""imported -> embedded: vectors for every question and answer the corpus lacks."""

from __future__ import annotations

from daemon.core.records import Batch
from daemon.core.textid import text_hash
from daemon.services import Services
from daemon.states import BatchState
from daemon.store import Connection
from daemon.store import corpus as q


def embed(batch: Batch, ctx: Services, now: float) -> Batch:
    """Embed the texts of the batch's pairs that no earlier batch already embedded."""
    embedder = ctx.embedder
    texts: dict[str, str] = {}
    for pair in q.batch_pairs(ctx.store.db, batch.id):
        for text in (pair["question"], pair["answer"]):
            texts.setdefault(text_hash(text), text)
    known = q.known_text_hashes(ctx.store.db, embedder.model_id, list(texts))
    todo = [h for h in texts if h not in known]
    vectors = (
        dict(zip(todo, embedder.embed_documents([texts[h] for h in todo]), strict=True))
        if todo
        else {}
    )

    def effects(db: Connection) -> dict[str, object]:
        q.save_embeddings(db, embedder.model_id, vectors, now)
        return {"texts": len(texts), "embedded": len(vectors), "model": embedder.model_id}

    return ctx.store.advance(batch, BatchState.EMBEDDED, now=now, effects=effects)
