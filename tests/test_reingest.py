"""Re-ingesting an unchanged root: a file whose size, mtime and sha256 the DB recorded
when it was last taken is not held for a settle window; any change still is."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import AGENT, as_json, example_tree, outbox_file, pairs, process
from conftest import copy_tree, run_cli, scalar

from daemon.core.config import Config, load_config
from daemon.runtime.pipeline import Pipeline
from daemon.runtime.service import Service
from daemon.stages.ingest import import_pairs
from daemon.stages.settle import settle
from daemon.stages.validate import validate
from daemon.states import BatchState

INTAKE = {
    BatchState.DETECTED: settle,
    BatchState.SETTLED: validate,
    BatchState.VALIDATED: import_pairs,
}
SETTLE = 5.0
NOW = 1_000.0


def config_for(root: Path, settle_seconds: float) -> Config:
    return load_config(root, overrides={"watch": {"settle_seconds": settle_seconds}})


@pytest.fixture
def taken(tmp_path: Path) -> Path:
    """A root whose three files were all taken and imported by one earlier run."""
    root = tmp_path / "root"
    for n in range(3):
        outbox_file(root, f"f{n}_qa_pairs.json", as_json(pairs(2, start=10 * n)))
    process(config_for(root, 0.0), dict(INTAKE))
    return root


@pytest.fixture
def restarted(taken: Path) -> Iterator[Pipeline]:
    """A new service on that root with a long settle window, started (so it has
    rescanned) at time NOW, without a watcher."""
    service = Service(config_for(taken, SETTLE), stages=dict(INTAKE), clock=lambda: NOW)
    pipeline = service.start(watch=False)
    yield pipeline
    service.stop()


def pending(pipeline: Pipeline) -> list[str]:
    """Names of the files the tracker holds for their settle window."""
    outbox = pipeline.ctx.config.root / "outbox"
    return sorted(p.name for p in outbox.rglob("*") if pipeline.tracker.is_pending(p))


def test_unchanged_files_are_not_held_for_a_settle_window(restarted: Pipeline) -> None:
    """After a restart, files exactly as they were taken wait for nothing: the tracker
    holds none of them and the service is idle at once."""
    assert pending(restarted) == []
    assert restarted.idle()


def test_new_bytes_wait_the_settle_window_as_before(taken: Path) -> None:
    """A file whose content changed, even with its size and mtime put back as they were,
    is held for the full settle window and then taken as a new batch."""
    path = taken / "outbox" / AGENT / "f1_qa_pairs.json"
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[data.index(b"What")] = ord("w")  # same size, new bytes
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    service = Service(config_for(taken, SETTLE), stages=dict(INTAKE), clock=lambda: NOW)
    pipeline = service.start(watch=False)
    try:
        assert pending(pipeline) == ["f1_qa_pairs.json"]
        assert pipeline.take_settled(NOW + SETTLE - 0.1) == 0
        assert pipeline.take_settled(NOW + SETTLE) == 1
    finally:
        service.stop()


def test_a_touched_file_is_read_once_more_then_known_again(taken: Path) -> None:
    """A file touched without new bytes settles once, creates no batch, and is recorded
    with its new mtime, so the next rescan passes it over."""
    path = taken / "outbox" / AGENT / "f2_qa_pairs.json"
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    batches = scalar(taken, "SELECT count(*) FROM batches")

    service = Service(config_for(taken, SETTLE), stages=dict(INTAKE), clock=lambda: NOW)
    pipeline = service.start(watch=False)
    try:
        assert pending(pipeline) == ["f2_qa_pairs.json"]
        assert pipeline.take_settled(NOW + SETTLE) == 0  # the same bytes: nothing new
        pipeline.rescan(NOW + SETTLE)
        assert pending(pipeline) == []
    finally:
        service.stop()
    assert scalar(taken, "SELECT count(*) FROM batches") == batches


@pytest.mark.slow
def test_run_once_on_an_unchanged_root_ends_without_waiting_the_settle_window(
    tmp_path: Path,
) -> None:
    """`inboxd run --once` on a root it has already taken in full, with a two-minute
    settle window, ends well within it (in about a second on a quiet machine) and
    records nothing new."""
    root = tmp_path / "root"
    copy_tree(example_tree(), root)
    first = run_cli(root, "run", "--once")
    assert first.returncode == 0, first.stderr
    transitions = scalar(root, "SELECT count(*) FROM transitions")

    started = time.monotonic()
    again = run_cli(root, "run", "--once", timeout=150, INBOXD_WATCH__SETTLE_SECONDS="120")
    elapsed = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert elapsed < 60
    assert scalar(root, "SELECT count(*) FROM transitions") == transitions
