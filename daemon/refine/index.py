"""The hnswlib cosine index of the active pairs, labels = pair ids.

hnswlib's ``save_index`` writes in place, so we save to a temp file, fsync, rename and
fsync the folder; a metadata file (model, dimension, count, parameters, checksums)
says what the index holds. The index is a cache: SQLite is the truth, and an index
that is missing, corrupt or out of step is rebuilt from the stored vectors.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from daemon.core import atomic, heartbeat
from daemon.providers.embedders import Matrix

INDEX_FILE = "pairs.hnsw"
META_FILE = "pairs.meta.json"
FORMAT_VERSION = 1
#: Rows added or queried between two heartbeats: a few seconds of work at most.
CHUNK_ROWS = 10_000


@dataclass(frozen=True)
class IndexParams:
    m: int = 16
    ef_construction: int = 200
    ef_search: int = 128


def ids_checksum(ids: Sequence[int]) -> str:
    return hashlib.sha256(",".join(map(str, sorted(ids))).encode()).hexdigest()


class VectorIndex:
    """A growable hnswlib index guarded by a lock, so writes never race queries."""

    def __init__(
        self, dimension: int, model_id: str, params: IndexParams | None = None, capacity: int = 1024
    ) -> None:
        self.dimension = dimension
        self.model_id = model_id
        self.params = params or IndexParams()
        self._lock = threading.RLock()
        self._index = hnswlib.Index(space="cosine", dim=dimension)
        self._index.init_index(
            max_elements=max(capacity, 16),
            M=self.params.m,
            ef_construction=self.params.ef_construction,
            allow_replace_deleted=True,
        )
        self._index.set_ef(self.params.ef_search)
        self._ids: set[int] = set()

    @property
    def ids(self) -> set[int]:
        with self._lock:  # the daemon's search thread reads while the pipeline adds
            return set(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, ids: Sequence[int], vectors: Matrix) -> None:
        """Add (or replace) vectors under their pair ids.

        hnswlib keeps a removed label in its slot (marked deleted) until the slot is
        reused. A label it still knows is updated in place (unmarked first if removed);
        only new labels may take a freed slot. Letting a known label take another slot
        would leave it in two slots (found twice) or, once its old slot is reused,
        unknown to hnswlib ("Label not found" on the next remove).
        """
        if not len(ids):
            return
        with self._lock:
            needed = len(self._ids) + len(ids)
            if needed > self._index.get_max_elements():
                self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
            labels = np.asarray(ids, dtype=np.int64)
            rows = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)
            known = set(self._index.get_ids_list())
            old = [row for row, pair_id in enumerate(ids) if pair_id in known]
            new = [row for row, pair_id in enumerate(ids) if pair_id not in known]
            for row in old:
                if ids[row] not in self._ids:
                    self._index.unmark_deleted(ids[row])
            if old:
                self._index.add_items(rows[old], labels[old])
            if new:
                self._index.add_items(rows[new], labels[new], replace_deleted=True)
            self._ids.update(ids)

    def remove(self, ids: Sequence[int]) -> None:
        with self._lock:
            for pair_id in ids:
                if pair_id in self._ids:
                    self._index.mark_deleted(pair_id)
                    self._ids.discard(pair_id)

    def query(self, vector: Matrix, k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest pair ids with cosine distance (0 same, 2 opposite)."""
        with self._lock:
            k = min(k, len(self._ids))
            if k == 0:
                return []
            self._index.set_ef(max(self.params.ef_search, k))
            labels, distances = self._index.knn_query(vector.reshape(1, -1), k=k)
        return [
            (int(label), float(dist)) for label, dist in zip(labels[0], distances[0], strict=True)
        ]

    def knn_all(self, vectors: Matrix, k: int) -> tuple[Any, Any]:
        """Batch query (for de-duplication): labels and distances arrays, computed in
        chunks with a heartbeat between them (a 100k corpus takes about a minute)."""
        k = min(k, len(self._ids))
        labels, distances = [], []
        for start in range(0, len(vectors), CHUNK_ROWS):
            with self._lock:
                self._index.set_ef(max(self.params.ef_search, k))
                found = self._index.knn_query(
                    vectors[start : start + CHUNK_ROWS], k=k, num_threads=-1
                )
            labels.append(found[0])
            distances.append(found[1])
            heartbeat.beat()
        if not labels:
            return np.zeros((0, k), dtype=np.uint64), np.zeros((0, k), dtype=np.float32)
        return np.concatenate(labels), np.concatenate(distances)

    # -- persistence -------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "model": self.model_id,
            "dimension": self.dimension,
            "space": "cosine",
            "count": len(self._ids),
            "ids_sha256": ids_checksum(list(self._ids)),
            "M": self.params.m,
            "ef_construction": self.params.ef_construction,
            "ef_search": self.params.ef_search,
        }

    def save(self, folder: Path) -> None:
        """Write index and metadata atomically (the metadata last, naming the index's hash)."""
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=atomic.temp_prefix(folder / INDEX_FILE), suffix=atomic.TEMP_SUFFIX, dir=folder
        )
        os.close(fd)
        try:
            with self._lock:
                self._index.save_index(tmp)
                meta = self.metadata()
            with Path(tmp).open("rb") as handle:
                meta["file_sha256"] = hashlib.file_digest(handle, "sha256").hexdigest()
                os.fsync(handle.fileno())
            Path(tmp).replace(folder / INDEX_FILE)
            atomic.fsync_dir(folder)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        atomic.write_text(folder / META_FILE, json.dumps(meta, indent=2) + "\n")

    def saved_in(self, folder: Path) -> bool:
        """Whether the metadata saved in ``folder`` names exactly the ids held now."""
        try:
            meta = json.loads((folder / META_FILE).read_text())
        except (OSError, ValueError):
            return False
        with self._lock:
            return bool(meta.get("ids_sha256") == ids_checksum(list(self._ids)))

    @classmethod
    def load(
        cls, folder: Path, ids: Sequence[int], model_id: str, dimension: int
    ) -> VectorIndex | None:
        """The saved index if it is intact and holds exactly ``ids``; else None."""
        try:
            meta = json.loads((folder / META_FILE).read_text())
            path = folder / INDEX_FILE
            with path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except (OSError, ValueError):
            return None
        if (
            meta.get("format") != FORMAT_VERSION
            or meta.get("model") != model_id
            or meta.get("dimension") != dimension
            or meta.get("file_sha256") != digest
            or meta.get("count") != len(ids)
            or meta.get("ids_sha256") != ids_checksum(ids)
        ):
            return None
        params = IndexParams(meta["M"], meta["ef_construction"], meta["ef_search"])
        index = cls(dimension, model_id, params, capacity=16)
        loaded = hnswlib.Index(space="cosine", dim=dimension)  # load_index wants a fresh one
        try:
            loaded.load_index(str(path), max_elements=len(ids) + 1024, allow_replace_deleted=True)
        except RuntimeError:
            return None
        index._index = loaded
        index._index.set_ef(params.ef_search)
        index._ids = set(ids)
        return index


def build(
    ids: Sequence[int],
    vectors: Matrix,
    model_id: str,
    dimension: int,
    params: IndexParams | None = None,
) -> VectorIndex:
    """A fresh index over ``vectors`` (rows in the order of ``ids``)."""
    index = VectorIndex(dimension, model_id, params, capacity=len(ids) + 1024)
    for start in range(0, len(ids), CHUNK_ROWS):
        index.add(ids[start : start + CHUNK_ROWS], vectors[start : start + CHUNK_ROWS])
        heartbeat.beat()
    return index
