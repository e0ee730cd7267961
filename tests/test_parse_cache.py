"""The import step reuses what validation parsed: a file is parsed and validated once
on the usual path, and again only when that result is gone (a restart, say)."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from builders import as_json, make_config, outbox_file, pairs

from daemon.core.logs import configure_logging
from daemon.ingest.parsed_cache import ParsedCache
from daemon.runtime.service import Service
from daemon.stages import Stage
from daemon.stages.ingest import import_pairs
from daemon.stages.settle import settle
from daemon.stages.validate import validate
from daemon.states import BatchState
from daemon.store import Store

INTAKE: dict[BatchState, Stage] = {
    BatchState.DETECTED: settle,
    BatchState.SETTLED: validate,
    BatchState.VALIDATED: import_pairs,
}


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("INBOXD_"):
            monkeypatch.delenv(name)
    configure_logging("json", "warning", stream=io.StringIO())
    yield
    structlog.reset_defaults()


def states(store: Store) -> list[str]:
    return [row[0] for row in store.db.execute("SELECT state FROM batches ORDER BY id")]


def test_import_uses_the_validated_pairs_without_reading_the_archive_again(
    tmp_path: Path,
) -> None:
    """The import step takes the pairs validation parsed, so the archived file is read
    once per version."""
    config = make_config(tmp_path / "root")
    outbox_file(config.root, "sma_qa_pairs.json", as_json(pairs(3)))
    service = Service(config, stages=dict(INTAKE))
    pipeline = service.start(watch=False)
    try:
        store = pipeline.ctx.store
        for _ in range(1000):  # settle, then validate: a few steps
            if states(store) == ["validated"]:
                break
            pipeline.step(time.time())
        assert states(store) == ["validated"]
        for copy in config.archive_dir.rglob("*"):
            if copy.is_file():
                copy.unlink()  # only the held result can feed the import now
        service.run_once()
        assert states(store) == ["imported"]
        assert store.db.execute("SELECT count(*) FROM pairs").fetchone()[0] == 3
    finally:
        service.stop()


def test_the_cache_holds_a_bounded_number_of_pairs() -> None:
    """Oldest versions are dropped first once the pair budget is passed."""
    from daemon.core.records import Batch

    cache = ParsedCache(budget=5)
    batches = [
        Batch(
            n,
            "a",
            f"outbox/a/{n}.json",
            f"sha{n}",
            1,
            BatchState.SETTLED,
            None,
            0,
            None,
            None,
            None,
        )
        for n in range(3)
    ]
    for batch in batches:
        cache.put(batch, ([object()] * 2, []))  # type: ignore[list-item]
    assert cache.take(batches[0]) is None
    assert cache.take(batches[2]) is not None
    assert cache.take(batches[2]) is None  # taken once
