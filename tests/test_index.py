"""The hnswlib index under ``state/index/``: what its metadata says, when a saved index is
refused, and that a missing, corrupt or out-of-step one is rebuilt from the stored vectors
with the same search results. Real model, real index, real files."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import process
from conftest import query
from structlog.testing import capture_logs

from daemon.core.config import Config, load_config
from daemon.core.logs import get_logger
from daemon.providers.embedders.local import LocalEmbedder
from daemon.refine.corpus import indexable_ids
from daemon.refine.index import INDEX_FILE, META_FILE, VectorIndex, build, ids_checksum
from daemon.runtime.wiring import open_searcher
from daemon.store import Store

MODEL = "local/all-MiniLM-L6-v2"
PAIRS = [
    (
        "How is the Relative Strength Index (RSI) calculated?",
        "RS = average gain / average loss over 14 periods and RSI = 100 - 100 / (1 + RS).",
    ),
    (
        "What RSI levels mean overbought and oversold?",
        "Above 70 is usually called overbought and below 30 oversold on a daily chart.",
    ),
    (
        "How is the Simple Moving Average computed?",
        "The SMA over N periods is the arithmetic mean of the last N closing prices.",
    ),
    (
        "What does a golden cross of the 50-day and 200-day SMA signal?",
        "The 50-day SMA crossing above the 200-day SMA is read as a turn to a bullish trend.",
    ),
    (
        "What does the MVRV ratio measure?",
        "Market Value to Realized Value: market cap over realised cap; above 3.5 marked tops.",
    ),
    (
        "How do Bollinger Bands work?",
        "A 20-period SMA with bands two standard deviations above and below it.",
    ),
    (
        "What is the funding rate of a perpetual swap?",
        "A periodic payment between longs and shorts that ties the perpetual price to spot.",
    ),
]
QUERIES = ["how do I calculate RSI", "moving average crossover", "MVRV", "volatility bands"]


def _settings(root: Path) -> Config:
    return load_config(root, overrides={"watch": {"settle_seconds": 0.0, "poll_seconds": 0.01}})


def _process(root: Path) -> list[dict[str, Any]]:
    """Start the service on ``root``, process what is there, stop; returns the log."""
    with capture_logs() as logs:
        process(_settings(root))
    return logs


def _results(root: Path) -> list[list[tuple[int, float | None]]]:
    """(pair id, distance) of the hits of every query, dense and hybrid."""
    searcher = open_searcher(_settings(root), get_logger())
    try:
        return [
            [(hit.pair_id, hit.distance and round(hit.distance, 4)) for hit in hits]
            for text in QUERIES
            for hits in (
                searcher.search(text, k=4, mode="dense", max_distance=2.0),
                searcher.search(text, k=4, mode="hybrid"),
            )
        ]
    finally:
        searcher.store.close()


def _db_ids(root: Path) -> list[int]:
    store = Store(_settings(root).db_path, readonly=True)
    try:
        return indexable_ids(store)
    finally:
        store.close()


def _meta(root: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((root / "state" / "index" / META_FILE).read_text())
    return meta


# The real all-MiniLM-L6-v2 (conftest.model), loaded before the first test.
pytestmark = pytest.mark.usefixtures("model")


@pytest.fixture(scope="module")
def refined(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root whose seven pairs went through every stage (the pristine copy)."""
    root = tmp_path_factory.mktemp("refined") / "root"
    outbox = root / "outbox" / "quant"
    outbox.mkdir(parents=True)
    items = [{"question": q, "answer": a} for q, a in PAIRS]
    (outbox / "mixed_qa_pairs.json").write_text(json.dumps(items[:4], indent=2))
    (outbox / "more_qa_pairs.json").write_text(json.dumps(items[4:], indent=2))
    _process(root)
    assert len(_db_ids(root)) == len(PAIRS)
    return root


@pytest.fixture(scope="module")
def baseline(refined: Path) -> list[list[tuple[int, float | None]]]:
    """Search results over the pristine root."""
    return _results(refined)


@pytest.fixture
def copy(refined: Path, tmp_path: Path) -> Path:
    """A private copy of the refined root, free to damage."""
    target = tmp_path / "root"
    shutil.copytree(refined, target)
    return target


# -- metadata and load --------------------------------------------------------------------


def test_metadata_names_model_dimension_count_space_parameters_and_checksums(
    refined: Path,
) -> None:
    """pairs.meta.json says which model and dimension, how many vectors (and which ids),
    the space, the HNSW parameters and the checksum of the index file beside it."""
    meta = _meta(refined)
    ids = _db_ids(refined)
    with (refined / "state" / "index" / INDEX_FILE).open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    assert meta == {
        "format": 1,
        "model": MODEL,
        "dimension": 384,
        "space": "cosine",
        "count": len(ids),
        "ids_sha256": ids_checksum(ids),
        "M": 16,
        "ef_construction": 200,
        "ef_search": 128,
        "file_sha256": digest,
    }
    leftovers = [p.name for p in (refined / "state" / "index").iterdir()]
    assert sorted(leftovers) == sorted([INDEX_FILE, META_FILE])  # no temp file left behind


def test_load_returns_the_saved_index_when_it_agrees_with_the_db(refined: Path) -> None:
    """A saved index whose metadata matches the DB's ids loads with those ids and answers
    queries like the index it was saved from."""
    ids = _db_ids(refined)
    index = VectorIndex.load(refined / "state" / "index", ids, MODEL, 384)
    assert index is not None
    assert index.ids == set(ids)
    vector = LocalEmbedder().embed_query("how do I calculate RSI")
    nearest = index.query(vector, 3)
    assert len(nearest) == 3
    assert all(pid in ids for pid, _ in nearest)
    assert [d for _, d in nearest] == sorted(d for _, d in nearest)


def _drop_last_id(ids: list[int]) -> list[int]:
    return ids[:-1]


def _add_an_id(ids: list[int]) -> list[int]:
    return [*ids, max(ids) + 1]


def _swap_an_id(ids: list[int]) -> list[int]:
    return [*ids[:-1], max(ids) + 1]


@pytest.mark.parametrize(
    ("change_ids", "model_id", "dimension"),
    [
        (_drop_last_id, MODEL, 384),
        (_add_an_id, MODEL, 384),
        (_swap_an_id, MODEL, 384),
        (list, "local/other-model", 384),
        (list, MODEL, 768),
    ],
    ids=["db-has-fewer", "db-has-more", "same-count-other-ids", "other-model", "other-dim"],
)
def test_load_refuses_an_index_out_of_step_with_the_db_or_the_model(
    refined: Path, change_ids: Callable[[list[int]], list[int]], model_id: str, dimension: int
) -> None:
    """VectorIndex.load returns None when the ids, the model or the dimension the DB
    expects differ from what the metadata says the index holds."""
    ids = change_ids(_db_ids(refined))
    assert VectorIndex.load(refined / "state" / "index", ids, model_id, dimension) is None


def _truncate(folder: Path) -> None:
    path = folder / INDEX_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(folder: Path) -> None:
    path = folder / INDEX_FILE
    size = path.stat().st_size
    path.write_bytes(np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8).tobytes())


def _flip_one_byte(folder: Path) -> None:
    path = folder / INDEX_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _delete_both(folder: Path) -> None:
    (folder / INDEX_FILE).unlink()
    (folder / META_FILE).unlink()


def _delete_index_file(folder: Path) -> None:
    (folder / INDEX_FILE).unlink()


def _delete_metadata(folder: Path) -> None:
    (folder / META_FILE).unlink()


def _metadata_not_json(folder: Path) -> None:
    (folder / META_FILE).write_text('{"format": 1, "model"')


def _metadata_count_wrong(folder: Path) -> None:
    meta = json.loads((folder / META_FILE).read_text())
    meta["count"] -= 1
    (folder / META_FILE).write_text(json.dumps(meta))


def _index_lacks_a_pair(folder: Path) -> None:
    """The saved index (consistent in itself) misses one pair the DB holds."""
    meta = json.loads((folder / META_FILE).read_text())
    index = VectorIndex.load(folder, _all_ids_of(folder), meta["model"], meta["dimension"])
    assert index is not None
    index.remove([max(index.ids)])
    index.save(folder)


def _all_ids_of(folder: Path) -> list[int]:
    return _db_ids(folder.parent.parent)


DAMAGE = {
    "deleted": _delete_both,
    "index-file-deleted": _delete_index_file,
    "metadata-deleted": _delete_metadata,
    "truncated": _truncate,
    "garbage": _garbage,
    "one-byte-flipped": _flip_one_byte,
    "metadata-not-json": _metadata_not_json,
    "metadata-count-wrong": _metadata_count_wrong,
    "out-of-step": _index_lacks_a_pair,
}


@pytest.mark.parametrize("damage", list(DAMAGE.values()), ids=list(DAMAGE))
def test_load_refuses_a_damaged_index(copy: Path, damage: Callable[[Path], None]) -> None:
    """VectorIndex.load returns None, never a half-read index, for missing, truncated,
    garbled or inconsistent files."""
    folder = copy / "state" / "index"
    damage(folder)
    assert VectorIndex.load(folder, _db_ids(copy), MODEL, 384) is None


@pytest.mark.parametrize(
    "damage",
    [_delete_both, _truncate, _garbage, _metadata_count_wrong, _index_lacks_a_pair],
    ids=["deleted", "truncated", "garbage", "metadata-count-wrong", "out-of-step"],
)
def test_service_rebuilds_a_damaged_index_with_the_same_search_results(
    copy: Path, damage: Callable[[Path], None], baseline: list[list[tuple[int, float | None]]]
) -> None:
    """Starting on a root whose index is gone, truncated, garbage or out of step with the
    DB rebuilds it from the stored vectors (index.rebuilt, right metadata, no embedding)
    and search returns the same pairs in the same order."""
    embedded = query(copy, "SELECT count(*) FROM embeddings")
    damage(copy / "state" / "index")

    logs = _process(copy)

    rebuilt = [entry for entry in logs if entry["event"] == "index.rebuilt"]
    assert len(rebuilt) == 1
    assert rebuilt[0]["count"] == len(PAIRS)
    ids = _db_ids(copy)
    meta = _meta(copy)
    assert (meta["count"], meta["ids_sha256"]) == (len(ids), ids_checksum(ids))
    assert VectorIndex.load(copy / "state" / "index", ids, MODEL, 384) is not None
    assert query(copy, "SELECT count(*) FROM embeddings") == embedded
    assert _results(copy) == baseline

    again = _process(copy)  # and the rebuilt index is the one loaded next time
    assert [e["count"] for e in again if e["event"] == "index.loaded"] == [len(PAIRS)]


def test_searcher_on_a_root_without_index_rebuilds_in_memory_and_writes_nothing(
    copy: Path, baseline: list[list[tuple[int, float | None]]]
) -> None:
    """``inboxd search`` over a root whose index is missing answers from an in-memory
    rebuild and leaves state/index/ to the daemon."""
    _delete_both(copy / "state" / "index")
    assert _results(copy) == baseline
    assert list((copy / "state" / "index").iterdir()) == []


# -- the index object ------------------------------------------------------------------------


def _unit_vectors(count: int, dimension: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(count, dimension)).astype(np.float32)
    normalised: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalised


@pytest.fixture
def small() -> Iterator[tuple[VectorIndex, np.ndarray]]:
    vectors = _unit_vectors(12)
    yield build(list(range(1, 11)), vectors[:10], "test/model", 16), vectors


def test_removed_ids_can_be_added_back_and_removed_again(
    small: tuple[VectorIndex, np.ndarray], tmp_path: Path
) -> None:
    """An id removed (a pair became a duplicate) and added back (a new threshold undid
    it) is found again, and can be removed again after its old slot was reused."""
    index, vectors = small
    index.remove([5])
    index.remove([2])
    index.add([5], vectors[4:5])  # back again
    index.add([11], vectors[10:11])  # reuses a freed slot
    assert index.ids == {1, 3, 4, 5, 6, 7, 8, 9, 10, 11}
    assert index.query(vectors[4], 1)[0][0] == 5

    index.remove([5])

    assert 5 not in {pid for pid, _ in index.query(vectors[4], 9)}
    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path, sorted(index.ids), "test/model", 16)
    assert loaded is not None
    assert {pid for pid, _ in loaded.query(vectors[4], 9)} == index.ids


def test_add_replaces_the_vector_of_an_id_already_held(
    small: tuple[VectorIndex, np.ndarray],
) -> None:
    """Adding an id the index holds replaces its vector; the id is held once."""
    index, vectors = small
    index.remove([9])  # a free slot the replacement must not take
    index.add([3], vectors[11:12])
    found = index.query(vectors[11], 9)
    assert found[0] == (3, pytest.approx(0.0, abs=1e-5))
    assert [pid for pid, _ in found].count(3) == 1
    assert len(index) == 9


def test_index_grows_past_its_initial_capacity(tmp_path: Path) -> None:
    """Adding more vectors than the index was made for resizes it; all are found."""
    vectors = _unit_vectors(1100, seed=3)
    index = VectorIndex(16, "test/model", capacity=16)
    for start in range(0, 1100, 100):
        index.add(list(range(start, start + 100)), vectors[start : start + 100])
    assert len(index) == 1100
    assert index.query(vectors[1099], 1)[0][0] == 1099
    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path, list(range(1100)), "test/model", 16)
    assert loaded is not None
    assert loaded.query(vectors[7], 1)[0][0] == 7
