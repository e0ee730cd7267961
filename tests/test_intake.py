"""Intake is per file and total: each way agent input used to crash, hang or stall the
daemon (issue 11, item 1) and each smaller intake fix (item 6), on a real root with real
files, a real SQLite DB and the real service (intake stages only, no model).

Whatever one file holds, the run ends normally; the file is refused (never read: logged
once, listed by ``status``, reported in the agent's feedback folder) or rejected or
partly imported with a reason at a position; every other file is taken as usual.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from builders import AGENT, as_json, as_jsonl, make_config, outbox_file, pair, pairs, write
from conftest import INBOXD, daemon_env
from structlog.testing import capture_logs

from daemon.core.config import Config
from daemon.core.logs import Event, configure_logging, get_logger
from daemon.gemini.batch import _display_name
from daemon.ingest.feedback import feedback_paths, refusal_paths
from daemon.ingest.layout import FileKind, classify, walk
from daemon.ops import status
from daemon.runtime.intake import Intake
from daemon.runtime.service import Service
from daemon.stages import Stage
from daemon.stages.ingest import import_pairs
from daemon.stages.settle import settle
from daemon.stages.validate import validate
from daemon.states import BatchState
from daemon.store import Store, meta

S = BatchState
INTAKE: dict[BatchState, Stage] = {
    S.DETECTED: settle,
    S.SETTLED: validate,
    S.VALIDATED: import_pairs,
}
NAME_MAX = 255
NOBODY = 65534


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty root, no INBOXD_* or systemd variables, logging as the daemon does."""
    for name in list(os.environ):
        if name.startswith("INBOXD_") or name in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
            monkeypatch.delenv(name)
    configure_logging("json", "debug", stream=io.StringIO())
    base = tmp_path / "root"
    for name in ("inbox", "outbox", "state"):
        (base / name).mkdir(parents=True)
    yield base
    structlog.reset_defaults()


class Running:
    """A started service (no watcher) that stays up between rounds, as the daemon does:
    each round rescans the folders and processes everything there."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.service = Service(config, stages=dict(INTAKE))
        self.events: list[dict[str, Any]] = []
        with capture_logs() as events:
            self.service.start(watch=False)
            self.service.run_once()
        self.events += events

    def round(self) -> list[dict[str, Any]]:
        """Rescan and process; the events logged meanwhile."""
        assert self.service.pipeline is not None
        with capture_logs() as events:
            self.service.pipeline.rescan(time.time())
            self.service.run_once()
        self.events += events
        return events

    def stop(self) -> None:
        self.service.stop()


def run_once(config: Config) -> list[dict[str, Any]]:
    """``run --once`` on the root; the events logged."""
    running = Running(config)
    running.stop()
    return running.events


def rows(config: Config, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    store = Store(config.db_path, readonly=True)
    try:
        return [dict(row) for row in store.db.query(sql, params or [])]
    finally:
        store.close()


def latest(config: Config, relpath: str) -> dict[str, Any]:
    """The newest batch of a path."""
    found = rows(config, "SELECT * FROM batches WHERE path = ? ORDER BY id DESC LIMIT 1", [relpath])
    assert found, f"no batch for {relpath}"
    return found[0]


def refused(config: Config) -> dict[str, dict[str, Any]]:
    """What ``inboxd status`` lists as refused, by path."""
    return {row["path"]: row for row in status.gather(config)["refused"]}


def logged(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


def good_file(root: Path) -> str:
    """A valid sibling, delivered beside each bad file: it must always be imported."""
    outbox_file(root, "good_qa_pairs.json", as_json(pairs(2)))
    return f"outbox/{AGENT}/good_qa_pairs.json"


def assert_good_imported(config: Config, relpath: str) -> None:
    assert latest(config, relpath)["state"] == S.IMPORTED


# -- item 1: names that are not UTF-8 ----------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "shown"),
    [
        ([AGENT, b"bad\xff_qa_pairs.json"], f"outbox/{AGENT}/bad\\xff_qa_pairs.json"),
        ([AGENT, b"session_\xe9", b"rsi.json"], f"outbox/{AGENT}/session_\\xe9/rsi.json"),
        ([b"agent\xc3", b"x.json"], "outbox/agent\\xc3/x.json"),
    ],
)
def test_a_name_that_is_not_utf8_is_refused_with_the_name_escaped(
    root: Path, parts: list[str | bytes], shown: str
) -> None:
    """A file (or folder, or agent) name that is not UTF-8 used to crash the daemon at
    the first SQL bind; now it is refused, shown with \\xNN, and nothing else stops."""
    good = good_file(root)
    path = (root / "outbox").joinpath(*[os.fsdecode(p) for p in parts])  # bytes kept
    write(path, as_json(pairs(1, start=50)))
    config = make_config(root)
    events = run_once(config)
    assert_good_imported(config, good)
    found = refused(config)
    assert list(found) == [shown]
    assert "not valid UTF-8" in found[shown]["reason"]
    assert found[shown]["position"] == "file name"
    [event] = logged(events, Event.FILE_REFUSED)
    assert event["path"] == shown
    assert rows(config, "SELECT count(*) AS n FROM batches")[0]["n"] == 1
    agent = shown.split("/")[1]
    md, js = refusal_paths(config.inbox_dir, agent, shown)
    if "\\" in agent:
        assert not (config.inbox_dir).joinpath("feedback").exists()  # no folder to write to
    else:
        assert json.loads(js.read_text())["refused"].startswith(found[shown]["reason"])
        assert shown in md.read_text()


# -- item 1: numbers out of range --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "shown"),
    [
        ("Sessions Complete: 99999999999999999999/43\n", "line 1, column 20", "9999999"),
        ("Sessions Complete: 12/" + "9" * 5_000 + "\n", "line 1, column 23", "5,000 digits"),
        ("Notes: x\nCurrent Session: " + "7" * 5_000, "line 2, column 18", "5,000 digits"),
    ],
)
def test_status_counts_out_of_range_are_errors_at_their_position(
    root: Path, text: str, position: str, shown: str
) -> None:
    """``status.txt`` counts too large for SQLite (OverflowError) or for int()
    (ValueError) used to crash every restart; now the file is refused at the line and
    column of the number, and the last good progress is kept."""
    good = good_file(root)
    status_txt = outbox_file(root, "status.txt", "Sessions Complete: 3/43\nCurrent Session: 4\n")
    config = make_config(root)
    running = Running(config)
    try:
        status_txt.write_text(text)
        running.round()
    finally:
        running.stop()
    assert_good_imported(config, good)
    progress = rows(config, "SELECT sessions_complete, sessions_total FROM progress")
    assert progress == [{"sessions_complete": 3, "sessions_total": 43}]
    row = refused(config)[f"outbox/{AGENT}/status.txt"]
    assert row["position"] == position
    assert "out of range (0 to 10,000)" in row["reason"] and shown in row["reason"]


def test_a_count_with_thousands_of_leading_zeros_is_read_as_its_value(root: Path) -> None:
    """``0000...07`` (5,000 digits) is 7: bounded by its value, not refused by int()."""
    outbox_file(root, "status.txt", "Sessions Complete: " + "0" * 5_000 + "7/43\n")
    config = make_config(root)
    run_once(config)
    progress = rows(config, "SELECT sessions_complete, sessions_total FROM progress")
    assert progress == [{"sessions_complete": 7, "sessions_total": 43}]
    assert refused(config) == {}


def test_an_assignment_numbered_out_of_range_is_refused(root: Path) -> None:
    """``session-99999999999999999999-assignment.md`` used to crash with OverflowError;
    now it is refused at its file name and the other assignments register."""
    inbox = root / "inbox" / AGENT
    write(inbox / "session-99999999999999999999-assignment.md", "# Session\n## Indicators\n- rsi\n")
    write(inbox / "session-02-assignment.md", "# Session 02 — Trend\n\n## Indicators\n\n- sma\n")
    config = make_config(root)
    run_once(config)
    assert [r["session"] for r in rows(config, "SELECT session FROM assignments")] == [2]
    row = refused(config)[f"inbox/{AGENT}/session-99999999999999999999-assignment.md"]
    assert row["position"] == "file name"
    assert "session number 99999999999999999999 is out of range" in row["reason"]


def test_a_pair_count_out_of_range_in_an_assignment_is_refused_at_its_line(root: Path) -> None:
    """A gap-fill bullet asking for 10^20 more pairs is an error at its line."""
    text = "# Session 50 — Gap fill\n\n## Indicators\n\n- rsi — 99999999999999999999 more pairs\n"
    write(root / "inbox" / AGENT / "session-50-assignment.md", text)
    config = make_config(root)
    run_once(config)
    row = refused(config)[f"inbox/{AGENT}/session-50-assignment.md"]
    assert row["position"] == "line 5"
    assert "the number of pairs asked 99999999999999999999 is out of range" in row["reason"]
    assert rows(config, "SELECT count(*) AS n FROM assignments")[0]["n"] == 0


def test_a_valid_file_under_an_out_of_range_session_folder_is_imported(root: Path) -> None:
    """Pairs under ``session_99999999999999999999/`` used to be parked in failed with
    OverflowError and never arrive; now they are imported (the folder's number is not
    used as their session) and the agent is told why at position ``path``."""
    relpath = f"outbox/{AGENT}/session_99999999999999999999/rsi_qa_pairs.json"
    outbox_file(root, relpath.split("/", 2)[2], as_json(pairs(3)))
    config = make_config(root)
    run_once(config)
    batch = latest(config, relpath)
    assert batch["state"] == S.IMPORTED and batch["pairs_valid"] == 3
    sessions = {r["session"] for r in rows(config, "SELECT session FROM pairs")}
    assert sessions == {4}  # RSI's session in the catalog
    errors = rows(config, "SELECT position, reason FROM batch_errors")
    assert [e["position"] for e in errors] == ["path"]
    assert "99999999999999999999 is out of range (0 to 10,000)" in errors[0]["reason"]
    _, js = feedback_paths(config.inbox_dir, AGENT, relpath, batch["sha256"])
    assert json.loads(js.read_text())["errors"][0]["position"] == "path"


# -- item 1: linear time ------------------------------------------------------------------


def test_an_indicator_with_a_long_digit_run_is_resolved_at_once(root: Path) -> None:
    """``"rsi_" + "1" * 40 + "x"`` used to hang the daemon for good (exponential regex
    backtracking, SIGTERM ignored, the archived copy read again after each restart);
    ``session_<24 digits>/`` cost ~20 s a lookup. Both are now immediate."""
    odd = "rsi_" + "1" * 40 + "x"
    outbox_file(
        root,
        "session_" + "1" * 24 + "/" + "ema_" + "2" * 40 + "y_qa_pairs.json",
        as_json(
            [
                pair(1, indicator=odd),
                pair(2, indicator="rsi_" + "3" * 100),
                pair(3, indicator="rsi_" + "3" * 10_000),
            ]
        ),
    )
    config = make_config(root)
    started = time.monotonic()
    run_once(config)
    assert time.monotonic() - started < 10  # hours before; ~1 s now, on a busy machine
    stored = {r["indicator"] for r in rows(config, "SELECT indicator FROM pairs")}
    # Unknown, kept as written; rsi with a (long) period number; longer than any name.
    assert stored == {odd, "rsi", "rsi_" + "3" * 10_000}


# -- item 1: long names --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "x" * 228 + ".json",  # a flat name of 233 bytes
        "session_02/" + "y" * 220 + ".json",  # 225 bytes under session_NN/
        "/".join(["d" * 200] * 12) + "/" + "z" * 240 + ".json",  # a deep path
        "é" * 120 + ".jsonl",  # 246 bytes in 126 characters
    ],
)
def test_a_malformed_file_with_a_long_name_is_rejected_with_feedback(root: Path, name: str) -> None:
    """A long name used to leave the file in failed with ``File name too long``: the
    feedback's temp name overflowed 255 bytes and the agent never heard why. Now every
    name the daemon derives (feedback, archive, temp) fits, whatever the input name."""
    outbox_file(root, name, b'[{"question": "truncated')
    config = make_config(root)
    run_once(config)
    relpath = f"outbox/{AGENT}/{name}"
    batch = latest(config, relpath)
    assert batch["state"] == S.REJECTED, batch["last_error"]
    assert batch["reject_reason"].startswith(("not valid JSON", "no valid pairs"))
    md, js = feedback_paths(config.inbox_dir, AGENT, relpath, batch["sha256"])
    assert json.loads(js.read_text())["file"] == relpath
    assert md.exists()
    derived = [
        *(config.inbox_dir / AGENT / "feedback").iterdir(),
        config.state_dir / batch["archive_path"],
    ]
    assert all(len(os.fsencode(p.name)) <= NAME_MAX - 20 for p in derived)


# -- item 1: duplicate keys, NaN and Infinity ------------------------------------------------


def test_a_key_named_twice_in_a_pair_is_an_error_at_the_pair(root: Path) -> None:
    """``{"question": Q1, "question": Q2}`` used to import Q2 and drop Q1 silently; now
    the pair is an error at its position naming the key, and its siblings import."""
    text = (
        '[{"question": "Q1: what is RSI?", "question": "Q2: what is RSI?",'
        ' "answer": "A momentum oscillator."},\n' + json.dumps(pair(7)) + "]"
    )
    relpath = f"outbox/{AGENT}/rsi_qa_pairs.json"
    outbox_file(root, "rsi_qa_pairs.json", text)
    outbox_file(
        root,
        "lines.jsonl",
        as_jsonl([pair(8)]) + b'{"question": "a", "answer": "b", "answer": "c"}\n',
    )
    config = make_config(root)
    run_once(config)
    assert latest(config, relpath)["pairs_valid"] == 1
    questions = {r["question"] for r in rows(config, "SELECT question FROM pairs")}
    assert questions == {pair(7)["question"], pair(8)["question"]}
    errors = {r["position"]: r["reason"] for r in rows(config, "SELECT * FROM batch_errors")}
    assert set(errors) == {"[0]", "line 2"}
    assert "names the key 'question' twice" in errors["[0]"]
    assert "names the key 'answer' twice" in errors["line 2"]


def test_a_list_key_named_twice_rejects_the_file_at_the_second_key(root: Path) -> None:
    """``{"qa_pairs": [...], "qa_pairs": [...]}`` used to drop the first list silently;
    now the file is rejected whole at the line and column of the second key."""
    text = (
        '{\n  "qa_pairs": ['
        + json.dumps(pair(1))
        + '],\n  "qa_pairs": ['
        + json.dumps(pair(2))
        + "]\n}"
    )
    outbox_file(root, "twice_qa_pairs.json", text)
    config = make_config(root)
    run_once(config)
    batch = latest(config, f"outbox/{AGENT}/twice_qa_pairs.json")
    assert batch["state"] == S.REJECTED
    assert "names the key 'qa_pairs' twice" in batch["reject_reason"]
    assert batch["reject_reason"].endswith("(at line 3, column 3)")
    assert rows(config, "SELECT count(*) AS n FROM pairs")[0]["n"] == 0


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_nan_and_infinity_are_errors_and_never_stored(root: Path) -> None:
    """``NaN``/``Infinity`` (or 1e999, which parses as one) in an unknown key used to be
    stored in ``pairs.extra`` as text that is not JSON; now the pair is an error naming
    where, and whatever is stored is strict JSON."""
    items = [
        '{"question": "q1?", "answer": "a1.", "score": NaN}',
        '{"question": "q2?", "answer": "a2.", "meta": {"values": [1, Infinity]}}',
        '{"question": "q3?", "answer": "a3.", "big": -1e999}',
        json.dumps({**pair(4), "score": 0.5}),
    ]
    outbox_file(root, "nan_qa_pairs.json", "[" + ",\n".join(items) + "]")
    config = make_config(root)
    run_once(config)
    errors = {r["position"]: r["reason"] for r in rows(config, "SELECT * FROM batch_errors")}
    assert errors["[0]"].startswith("score: holds nan")
    assert errors["[1]"].startswith("meta.values[1]: holds inf")
    assert errors["[2]"].startswith("big: holds -inf")
    stored = rows(config, "SELECT extra FROM pairs")
    assert [_strict_json(r["extra"]) for r in stored] == [{"score": 0.5}]


# -- any exception type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        OverflowError("Python int too large to convert to SQLite INTEGER"),
        UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed"),
        ValueError("Exceeds the limit (4300 digits) for integer string conversion"),
        KeyError("missing"),
        RecursionError("maximum recursion depth exceeded"),
    ],
)
def test_any_error_recording_one_file_refuses_that_file_only(root: Path, error: Exception) -> None:
    """Whatever a recorder raises for one file (not only InputError and OSError, as
    before), that file is refused with the error, logged once with its traceback, and
    the next file is taken."""
    bad = outbox_file(root, "bad_qa_pairs.json", as_json(pairs(1)))
    ok = outbox_file(root, "ok_qa_pairs.json", as_json(pairs(1, start=5)))
    config = make_config(root)
    service = Service(config, stages=dict(INTAKE))
    pipeline = service.start(watch=False)
    try:
        intake = Intake(pipeline.ctx)
        taken: list[str] = []

        def record(kind: FileKind, agent: str, relpath: str, snap: Any, now: float) -> int:
            if relpath.endswith("bad_qa_pairs.json"):
                raise error
            taken.append(relpath)
            return 1

        with capture_logs() as events:
            for _ in range(3):  # three scans: refused once, logged once
                assert [intake.take(p, time.time(), record) for p in (bad, ok)] == [0, 1]
    finally:
        service.stop()
    assert taken == [f"outbox/{AGENT}/ok_qa_pairs.json"] * 3
    [event] = logged(events, Event.FILE_REFUSED)
    assert event["reason"] == f"unexpected error: {error!r}"
    assert event["exc_info"] is True  # the traceback, for the operator
    assert refused(config)[f"outbox/{AGENT}/bad_qa_pairs.json"]["reason"] == event["reason"]


# -- refusals: logged once, in status, in feedback, gone when fixed --------------------------


def test_a_refusal_is_logged_once_shown_in_status_and_dropped_when_fixed(root: Path) -> None:
    """A FIFO named like a Q&A file is refused once however many scans see it, listed by
    ``inboxd status`` and reported to the agent; replaced by a real file, it is taken and
    the refusal and its report are gone."""
    fifo = root / "outbox" / AGENT / "pipe_qa_pairs.json"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    relpath = f"outbox/{AGENT}/pipe_qa_pairs.json"
    config = make_config(root)
    running = Running(config)
    try:
        for _ in range(3):
            running.round()
        assert len(logged(running.events, Event.FILE_REFUSED)) == 1
        assert refused(config)[relpath]["reason"] == "refused: not a regular file"
        report, _ = refusal_paths(config.inbox_dir, AGENT, relpath)
        assert "**Refused**: refused: not a regular file" in report.read_text()
        fifo.unlink()
        fifo.write_bytes(as_json(pairs(2)))
        running.round()
        assert latest(config, relpath)["state"] == S.IMPORTED
        assert relpath not in refused(config)
        assert not report.exists()
    finally:
        running.stop()


def test_a_link_to_nothing_is_refused_until_its_target_arrives(root: Path) -> None:
    """A symlink whose target is missing was dropped as "vanished" on every scan, with
    no word to anyone; now it is refused, and taken once its target exists."""
    link = root / "outbox" / AGENT / "later_qa_pairs.json"
    link.parent.mkdir(parents=True)
    link.symlink_to("missing.json")
    relpath = f"outbox/{AGENT}/later_qa_pairs.json"
    config = make_config(root)
    running = Running(config)
    try:
        assert refused(config)[relpath]["reason"] == "refused: it links to nothing (missing.json)"
        (link.parent / "missing.json").write_bytes(as_json(pairs(2)))
        running.round()
        assert latest(config, relpath)["state"] == S.IMPORTED
        assert relpath not in refused(config)
    finally:
        running.stop()


def test_a_refusal_of_a_file_that_is_gone_is_dropped_at_the_next_scan(root: Path) -> None:
    """A refused file that is removed leaves ``status`` at the next full scan."""
    link = root / "outbox" / AGENT / "passwd.json"
    link.parent.mkdir(parents=True)
    link.symlink_to("/etc/passwd")
    config = make_config(root)
    running = Running(config)
    try:
        assert "links outside the root" in refused(config)[f"outbox/{AGENT}/passwd.json"]["reason"]
        link.unlink()
        running.round()
        assert refused(config) == {}
    finally:
        running.stop()


def test_status_json_and_text_list_refused_files(root: Path) -> None:
    """``inboxd status --json`` lists refused files with reason and position, and the
    text form prints them."""
    outbox_file(root, "status.txt", "Sessions Complete: 99999999999999999999/43\n")
    config = make_config(root)
    run_once(config)
    done = subprocess.run(
        [str(INBOXD), "--root", str(root), "status", "--json"],
        capture_output=True, text=True, env=daemon_env(), check=True, timeout=120,
    )  # fmt: skip
    [row] = json.loads(done.stdout)["refused"]
    assert row["path"] == f"outbox/{AGENT}/status.txt"
    assert row["position"] == "line 1, column 20"
    text = subprocess.run(
        [str(INBOXD), "--root", str(root), "status"],
        capture_output=True, text=True, env={**daemon_env(), "COLUMNS": "250"}, check=True,
        timeout=120,
    ).stdout  # fmt: skip
    assert "Refused files" in text and "out of range" in text


# -- item 6 ------------------------------------------------------------------------------------


def test_feedback_folders_are_never_input_and_classify_agrees_with_walk(tmp_path: Path) -> None:
    """``outbox/<agent>/feedback/*.json`` was accepted by ``classify`` (watcher events)
    but never seen by the rescan; now neither takes any ``feedback`` folder."""
    names = [
        "outbox/a1/feedback/x.json",
        "outbox/a1/session_02/feedback/y.json",
        "outbox/feedback/z.json",
        "inbox/a1/feedback/session-02-assignment.md",
        "outbox/a1/ok.json",
        "outbox/a1/dir.json/inner.json",
    ]
    for name in names:
        write(tmp_path / name, b"[]")
    assert {p.relative_to(tmp_path).as_posix() for p in walk(tmp_path)} == {
        "outbox/a1/ok.json",
        "outbox/a1/dir.json",  # a folder named like a Q&A file: listed, to be refused
        "outbox/a1/dir.json/inner.json",
    }
    for name in names[:4]:
        assert classify(tmp_path, tmp_path / name) is None, name


def test_a_file_over_the_limit_is_remembered_by_size_and_mtime(root: Path) -> None:
    """A file over the size limit used to be hashed whole on every rescan; now, while its
    size and mtime stay the same, it is not read again (new bytes with the same size and
    mtime make no new batch), and a change to either is a new version."""
    big = outbox_file(root, "big_qa_pairs.json", b"[" + b" " * 5_000 + b"]")
    config = make_config(root, max_file_bytes=1_000)
    running = Running(config)
    try:
        first = latest(config, f"outbox/{AGENT}/big_qa_pairs.json")
        assert first["state"] == S.REJECTED and "over the limit" in first["reject_reason"]
        stamp = big.stat()
        big.write_bytes(b"[" + b"\n" * 5_000 + b"]")  # same size, other bytes
        os.utime(big, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        running.round()
        running.round()
        assert latest(config, f"outbox/{AGENT}/big_qa_pairs.json")["id"] == first["id"]
        os.utime(big, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))
        running.round()
        second = latest(config, f"outbox/{AGENT}/big_qa_pairs.json")
        assert second["id"] != first["id"] and second["sha256"] != first["sha256"]
    finally:
        running.stop()


def test_temp_files_left_by_a_killed_daemon_are_removed_at_start(root: Path) -> None:
    """Temp files a SIGKILL left in ``state/index`` and ``state/archive`` are removed at
    the next start and logged; nothing else there is touched."""
    leftovers = [
        write(root / "state/index/.pairs.hnsw.k2j4h5g6.tmp", b"x" * 1000),
        write(root / "state/archive/ab/.abcdef.json.1a2b3c4d.tmp", b"y" * 24),
    ]
    kept = [
        write(root / "state/index/pairs.meta.json", b"{}"),
        write(root / "state/archive/ab/abcdef.json", b"[]"),
        write(root / "outbox" / AGENT / ".mine.json.tmp", b"[]"),  # the agent's: not ours
    ]
    config = make_config(root)
    events = run_once(config)
    assert not any(p.exists() for p in leftovers)
    assert all(p.exists() for p in kept)
    removed = logged(events, Event.TEMP_REMOVED)
    assert sorted((e["files"], e["bytes"]) for e in removed) == [(1, 24), (1, 1000)]


def test_library_log_records_are_json_events_and_a_storm_is_counted() -> None:
    """watchdog's "Inotify queue overflowed" (19,119 plain-text lines in one storm) goes
    through structlog: one JSON event, then repeats within the window are counted."""
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    try:
        inotify = logging.getLogger("watchdog.observers.inotify_c")
        for _ in range(5_000):
            inotify.warning("Inotify queue overflowed; filesystem events were lost")
        logging.getLogger("some.library").error("disk %s failed", "sdb")
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["event"], e["logger"], e["level"]) for e in lines] == [
        (Event.LIBRARY_LOG, "watchdog.observers.inotify_c", "warning"),
        (Event.LIBRARY_LOG, "some.library", "error"),
    ]
    assert lines[1]["message"] == "disk sdb failed"


def test_redaction_is_by_exact_secret_names() -> None:
    """Secret fields are redacted by name; ``input_tokens`` (a count) is not."""
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    try:
        get_logger().info(
            "job.polled",
            input_tokens=120,
            output_tokens=30,
            max_tokens=8,
            api_key="AIzaSyA-secret",
            Authorization="Bearer secret",
            token="secret",  # noqa: S106 - the value redaction must hide
        )
    finally:
        structlog.reset_defaults()
    line = json.loads(stream.getvalue())
    assert (line["input_tokens"], line["output_tokens"], line["max_tokens"]) == (120, 30, 8)
    assert line["api_key"] == line["Authorization"] == line["token"] == "[redacted]"
    assert "secret" not in stream.getvalue()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as the operator running status")
def test_status_as_root_on_a_stopped_daemon_leaves_no_wal_files(root: Path) -> None:
    """Root running ``inboxd status`` on a stopped daemon's root used to leave root-owned
    ``-wal``/``-shm`` files the daemon's user could not open; now it creates none."""
    outbox_file(root, "sma_qa_pairs.json", as_json(pairs(2)))
    run_once(make_config(root))
    for path in [root, *root.rglob("*")]:
        os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    before = sorted(p.name for p in (root / "state").iterdir())
    done = subprocess.run(
        [str(INBOXD), "--root", str(root), "status", "--json"],
        capture_output=True, text=True, env=daemon_env(), check=True, timeout=120,
    )  # fmt: skip
    assert json.loads(done.stdout)["pairs"] == 2
    assert sorted(p.name for p in (root / "state").iterdir()) == before
    assert not list((root / "state").glob("inboxd.db-*"))


def test_gemini_display_names_carry_a_per_root_id(tmp_path: Path) -> None:
    """Two roots on the same API key judging the same pairs make different display names
    (before, the second could adopt the first's job); a root keeps its id."""
    names = []
    for name in ("one", "two"):
        store = Store(tmp_path / name / "inboxd.db")
        store.migrate()
        root_id = meta.root_id(store.db)
        assert len(root_id) == 12 and int(root_id, 16) >= 0
        display = _display_name("gemini-judge/1", ["h1", "h2"], store)
        assert display.startswith(f"inboxd-judge-{root_id}-")
        store.close()
        store = Store(tmp_path / name / "inboxd.db")
        assert meta.root_id(store.db) == root_id
        store.close()
        names.append(display)
    assert names[0] != names[1]
