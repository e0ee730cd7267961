"""The sync state of a Chroma collection, apart from Chroma's client: the records it
should hold (document, scalar metadata, and a fingerprint that changes with any of them
or with the embedding model), the ledger of what the last sync wrote (so a sync need
not read every record's metadata back), and the lock that lets one sync run at a time.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from daemon.core import atomic
from daemon.core.catalog import Catalog
from daemon.rag.knowledge_base import knowledge_base_rows
from daemon.store import Store

LOCK_FILE = ".inboxd-sync.lock"
FINGERPRINT = "inboxd_fingerprint"


def _joined(values: list[Any], sep: str) -> str:
    return sep.join(str(v) for v in values if v not in (None, ""))


def records(
    store: Store, ids: list[int], scorer: str, catalog: Catalog, model_id: str
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Chroma id -> (document, metadata) of each pair. Metadata values are scalars (lists
    joined, None left out); the fingerprint changes when any of them, the text or the
    embedding model changes."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for row in knowledge_base_rows(store, ids, scorer, catalog):
        document = f"{row['question']}\n\n{row['answer']}"
        provenance = row["provenance"]
        values: dict[str, Any] = {
            "pair_id": row["id"],
            "question": row["question"],
            "indicator": row["indicator"],
            "indicator_name": row["indicator_name"],
            "session": row["session"],
            "category": row["category"],
            "type": row["type"],
            "difficulty": row["difficulty"],
            "quality": row["quality"],
            "tier": row["tier"],
            "scorer": row["scorer"],
            "tags": _joined(row["tags"], ", "),
            "sources": _joined(row["sources"], "; "),
            "files": _joined([f["path"] for f in provenance["files"]], "; "),
            "duplicates_folded": len(provenance["duplicates_folded"]),
        }
        metadata = {k: v for k, v in values.items() if v not in (None, "")}
        digest = hashlib.sha256(
            json.dumps([model_id, document, metadata], sort_keys=True, default=str).encode()
        ).hexdigest()[:32]
        found[str(row["id"])] = (document, {**metadata, FINGERPRINT: digest})
    return found


@contextmanager
def locked(path: Path, *, wait: bool) -> Iterator[bool]:
    """Hold the sync lock of ``path``; yields False when ``wait`` is off and it is taken."""
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def _ledger_path(path: Path, name: str) -> Path:
    return path / f".inboxd-sync-{name}.json"


def held_fingerprints(
    collection: Any, path: Path, name: str, model_id: str, batch: int
) -> dict[str, str | None]:
    """What the collection holds: id -> fingerprint. Reading Chroma's metadata costs
    ~0.3 ms a record (5 s at 17,000), so the ledger the last sync wrote is used when it
    names this very collection and the same ids; else the metadata is read."""
    ids = collection.get(include=[])["ids"]  # ids alone are cheap
    try:
        ledger = json.loads(_ledger_path(path, name).read_text())
        if (
            ledger.get("collection_id") == str(collection.id)
            and ledger.get("model") == model_id
            and set(ledger["fingerprints"]) == set(ids)
        ):
            return dict(ledger["fingerprints"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    found: dict[str, str | None] = {}
    for start in range(0, len(ids), batch):
        page = collection.get(ids=ids[start : start + batch], include=["metadatas"])
        for chroma_id, metadata in zip(page["ids"], page["metadatas"], strict=True):
            found[chroma_id] = (metadata or {}).get(FINGERPRINT)
    return found


def write_ledger(
    collection: Any, path: Path, name: str, model_id: str, fingerprints: dict[str, str | None]
) -> None:
    """Record what ``collection`` now holds, for the next sync's ``held_fingerprints``."""
    ledger = {"collection_id": str(collection.id), "model": model_id, "fingerprints": fingerprints}
    atomic.write_text(_ledger_path(path, name), json.dumps(ledger, sort_keys=True) + "\n")
