"""Properties of intake on a real root (issue 11): whatever the file names (arbitrary
bytes), ``status.txt`` or assignment contents, a run ends normally and each file is
taken, refused with a reason and position, or (not a protocol file) left alone; nothing
is parked in ``failed`` and nothing is half-recorded."""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
from builders import AGENT, as_json, as_jsonl, make_config, pairs, process, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.core.config import Config
from daemon.core.logs import configure_logging
from daemon.core.numbers import MAX_SESSION
from daemon.core.textid import is_decodable, printable
from daemon.ingest.agent_files import parse_status
from daemon.ingest.layout import FileKind, classify
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
ON_A_ROOT = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(autouse=True)
def quiet_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Logging as the daemon configures it, into a buffer; no INBOXD_* settings."""
    for name in list(os.environ):
        if name.startswith("INBOXD_") or name in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
            monkeypatch.delenv(name)
    configure_logging("json", "info", stream=io.StringIO())
    yield
    structlog.reset_defaults()


@contextmanager
def fresh_root() -> Iterator[Path]:
    """A new empty root for one example (hypothesis runs many in one test)."""
    with tempfile.TemporaryDirectory(prefix="inboxd-prop-") as tmp:
        root = Path(tmp) / "root"
        for name in ("inbox", "outbox", "state"):
            (root / name).mkdir(parents=True)
        yield root


def run(config: Config) -> dict[str, list[dict[str, Any]]]:
    """``run --once`` with the intake stages; then the tables intake writes."""
    process(config, stages=dict(INTAKE))
    store = Store(config.db_path, readonly=True)
    try:
        return {
            table: [dict(row) for row in store.db.query(f"SELECT * FROM {table}")]
            for table in ("batches", "refused_files", "progress", "assignments")
        }
    finally:
        store.close()


# -- file names: arbitrary bytes -------------------------------------------------------------

_component = st.binary(min_size=1, max_size=120).filter(
    lambda b: b"/" not in b and b"\x00" not in b and b not in (b".", b"..")
)
_suffix = st.sampled_from([b".json", b".jsonl", b".JSON", b"", b".txt"])
_relative = st.tuples(st.lists(_component, max_size=2), _component, _suffix).map(
    lambda t: [*t[0], t[1][: 250 - len(t[2])] + t[2]]
)


@ON_A_ROOT
@given(paths=st.lists(_relative, min_size=1, max_size=4, unique_by=lambda p: p[-1]))
def test_any_file_name_is_taken_refused_or_ignored(paths: list[list[bytes]]) -> None:
    """Files with arbitrary byte names in an agent's outbox: a UTF-8 protocol name is
    imported, any other protocol name is refused showing it escaped, the rest ignored."""
    with fresh_root() as root:
        written: list[Path] = []
        for number, parts in enumerate(paths):
            path = (root / "outbox" / AGENT).joinpath(*[os.fsdecode(p) for p in parts])
            if path.parent.is_file() or path.is_dir() or path.exists():
                continue  # one example's names may clash (a folder and a file)
            path.parent.mkdir(parents=True, exist_ok=True)
            items = pairs(2, start=10 * number)
            jsonl = path.name.lower().endswith(".jsonl")
            path.write_bytes(as_jsonl(items) if jsonl else as_json(items))
            written.append(path)
        tables = run(make_config(root))
        states = {row["path"]: row["state"] for row in tables["batches"]}
        refused = {row["path"]: row for row in tables["refused_files"]}
        for path in written:
            found = classify(root, path)
            if found is None:
                continue
            shown = printable(found.relpath)
            if is_decodable(found.relpath) and found.kind is FileKind.QA:
                assert states[found.relpath] == BatchState.IMPORTED
                assert shown not in refused
            elif not is_decodable(found.relpath):
                assert refused[shown]["position"] == "file name"
                assert found.relpath not in states
        assert BatchState.FAILED not in states.values()
        assert all(is_decodable(p) for p in [*states, *refused])


# -- status.txt ----------------------------------------------------------------------------

_number = st.one_of(
    st.integers(0, 100),
    st.integers(0, 10**30),
    st.integers(0, 9).map(lambda d: str(d) * 5_000),
).map(str)
_status_line = st.one_of(
    st.tuples(_number, _number).map(lambda t: f"Sessions Complete: {t[0]}/{t[1]}"),
    _number.map(lambda n: f"sessions completed :{n}"),
    _number.map(lambda n: f"Current Session: {n}"),
    st.text(max_size=40).map(lambda t: f"Last Updated: {t}"),
    st.text(max_size=40).map(lambda t: f"Notes: {t}"),
    st.text(max_size=80),
)
_status = st.one_of(
    st.lists(_status_line, max_size=6).map(
        lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")
    ),
    st.binary(max_size=300),
)


@ON_A_ROOT
@given(data=_status)
def test_any_status_file_is_recorded_or_refused_at_a_position(data: bytes) -> None:
    """Any ``status.txt``: its progress is recorded with every count in range, or it is
    refused at the line and column of the number that is not."""
    with fresh_root() as root:
        write(root / "outbox" / AGENT / "status.txt", data)
        tables = run(make_config(root))
        text = data.decode("utf-8", errors="replace")
        if tables["refused_files"]:
            [row] = tables["refused_files"]
            assert row["path"] == f"outbox/{AGENT}/status.txt"
            assert row["position"].startswith("line ") and "out of range" in row["reason"]
            assert tables["progress"] == []
            return
        [progress] = tables["progress"]
        expected = parse_status(text)
        for key in ("sessions_complete", "sessions_total", "current_session"):
            assert progress[key] == expected[key]
            assert progress[key] is None or 0 <= progress[key] <= MAX_SESSION


# -- assignments ---------------------------------------------------------------------------

_bullet = st.one_of(
    st.sampled_from(["rsi", "RSI (14)", "sma — Simple Moving Average", "unknown thing"]),
    st.tuples(st.sampled_from(["rsi", "macd", "obv"]), _number).map(
        lambda t: f"{t[0]} — {t[1]} more pairs; types: calculation; difficulties: expert"
    ),
    st.text(max_size=60),
)
_assignment = st.tuples(
    st.sampled_from(["# Session 50 — Gap fill", "# Session 7 — Trend", "", "#   "]),
    st.lists(_bullet, max_size=5),
    st.text(max_size=60),
).map(lambda t: f"{t[0]}\n\n## Indicators\n\n" + "".join(f"- {b}\n" for b in t[1]) + t[2])


@ON_A_ROOT
@given(
    session=st.one_of(st.integers(0, 60), st.integers(0, 10**25)),
    text=_assignment,
)
def test_any_assignment_is_registered_or_refused_at_a_position(session: int, text: str) -> None:
    """Any ``session-NN-assignment.md``: registered with its session and pair counts in
    range, or refused at its file name or the line of the number out of range."""
    with fresh_root() as root:
        name = f"session-{session:02d}-assignment.md"
        write(root / "inbox" / AGENT / name, text.encode("utf-8", "surrogatepass"))
        tables = run(make_config(root))
        if tables["refused_files"]:
            [row] = tables["refused_files"]
            assert row["path"] == f"inbox/{AGENT}/{name}"
            assert row["position"] == "file name" or row["position"].startswith("line ")
            assert "out of range" in row["reason"]
            assert tables["assignments"] == []
            return
        [registered] = tables["assignments"]
        assert registered["session"] == session <= MAX_SESSION
        assert all(0 <= r["pairs"] <= 100_000 for r in json.loads(registered["requests"]))
