"""Bad input end to end, in process: a real root with bad files beside good ones, one
``Service.run_once()``. Every bad file is rejected or refused with its file and position
in the log, the agent gets feedback, valid siblings are imported, nothing escapes."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from builders import AGENT, as_json, as_jsonl, make_config, outbox_file, pair, pairs, process
from structlog.testing import capture_logs

from daemon.core.config import Config
from daemon.core.logs import Event, configure_logging
from daemon.core.records import PairError
from daemon.ingest.feedback import feedback_paths, refusal_paths, write_feedback
from daemon.stages import Stage
from daemon.stages.ingest import import_pairs
from daemon.stages.settle import settle
from daemon.stages.validate import validate
from daemon.states import BatchState
from daemon.store import Store

S = BatchState
# The intake stages only: these tests are about reading files, not about refinement.
INTAKE: dict[BatchState, Stage] = {
    S.DETECTED: settle,
    S.SETTLED: validate,
    S.VALIDATED: import_pairs,
}

TRUNCATED = b'[\n  {"question": "What is RSI?", "answer": "A momentum osc'
GARBAGE = bytes(range(256)) * 4  # 0x80 at byte 128 is the first that is not UTF-8
LATIN1 = '[{"question": "Qu\'est-ce que le caf\u00e9?", "answer": "Un indicateur."}]'.encode(
    "latin-1"
)


@pytest.fixture
def fresh_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty root; logging configured as the daemon does (into a buffer), reset after;
    the daemon runs the intake stages only (see run_once)."""
    for name in list(os.environ):
        if name.startswith("INBOXD_") or name in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
            monkeypatch.delenv(name)
    configure_logging("json", "debug", stream=io.StringIO())
    yield tmp_path / "root"
    structlog.reset_defaults()


def run_once(config: Config) -> list[dict[str, Any]]:
    """Start a service without a watcher, process everything, stop; the captured events."""
    with capture_logs() as events:
        process(config, stages=dict(INTAKE))
    return events


def batches(config: Config) -> dict[str, dict[str, Any]]:
    """The newest batch row of every path, by file name."""
    store = Store(config.db_path, readonly=True)
    try:
        rows = store.db.query("SELECT * FROM batches ORDER BY id")
        return {row["path"].rsplit("/", 1)[-1]: dict(row) for row in rows}
    finally:
        store.close()


def query(config: Config, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    store = Store(config.db_path, readonly=True)
    try:
        return [dict(row) for row in store.db.query(sql, params or [])]
    finally:
        store.close()


def feedback(config: Config, row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The Markdown text and the parsed JSON feedback of one batch."""
    md, js = feedback_paths(config.inbox_dir, row["agent"], row["path"], row["sha256"])
    return md.read_text(), json.loads(js.read_text())


def events_named(events: list[dict[str, Any]], name: str) -> dict[str, dict[str, Any]]:
    """Captured events of one name, by the file name they are about."""
    return {e["path"].rsplit("/", 1)[-1]: e for e in events if e["event"] == name}


@pytest.fixture
def bad_root(fresh_root: Path) -> Path:
    """A root whose agent delivered every kind of bad file next to good ones."""
    root = fresh_root
    outbox_file(root, "good_qa_pairs.json", as_json(pairs(3)))
    mixed = [
        pair(10),
        {"question": 5, "answer": "a number is not a question"},
        {"question": "   ", "answer": "blank question"},
        {"question": "Where is the answer?"},
        {**pair(11), "tags": 7},
        pair(12),
    ]
    outbox_file(
        root, "session_02/mixed_qa_pairs.json", as_json({"indicator": "rsi", "qa_pairs": mixed})
    )
    outbox_file(
        root,
        "lines.jsonl",
        as_jsonl([pair(20)]) + b'{"question": "broken\n\n' + as_jsonl([pair(21)]),
    )
    outbox_file(root, "truncated_qa_pairs.json", TRUNCATED)
    outbox_file(root, "wrongtypes_qa_pairs.json", as_json([{"question": 1, "answer": 2}]))
    outbox_file(root, "empty_qa_pairs.json", as_json([{"question": "", "answer": " "}]))
    outbox_file(root, "huge_qa_pairs.json", as_json(pairs(400, 100)))
    outbox_file(root, "garbage.json", GARBAGE)
    outbox_file(root, "deep_qa_pairs.json", b"[" * 200 + b"]" * 200)
    outbox_file(root, "latin1_qa_pairs.json", LATIN1)
    (root / "outbox" / AGENT / "passwd.json").symlink_to("/etc/passwd")
    os.mkfifo(root / "outbox" / AGENT / "pipe.json")
    return root


# What each rejected file's reason and position must say.
REJECTED = {
    "truncated_qa_pairs.json": ("not valid JSON: Unterminated string", "line 2, column 42"),
    "wrongtypes_qa_pairs.json": ("no valid pairs (1 invalid item(s))", None),
    "empty_qa_pairs.json": ("no valid pairs (1 invalid item(s))", None),
    "huge_qa_pairs.json": ("over the limit of 20,000", "byte 20,001"),
    "garbage.json": ("not UTF-8 text (byte 0x80", "line 2, column 118 (byte 128)"),
    "deep_qa_pairs.json": ("nested deeper than 32 levels", "line 1, column 33"),
    "latin1_qa_pairs.json": ("not UTF-8 text (byte 0xe9", "line 1, column 36 (byte 35)"),
}


def test_bad_files_are_rejected_with_file_and_position_and_nothing_escapes(
    bad_root: Path,
) -> None:
    """Each unusable file ends rejected, logged with its path, reason and position."""
    config = make_config(bad_root)
    events = run_once(config)  # raises nothing
    rows = batches(config)
    logged = events_named(events, Event.FILE_REJECTED)
    assert set(logged) == set(REJECTED)
    for name, (reason, position) in REJECTED.items():
        assert rows[name]["state"] == S.REJECTED, name
        assert reason in rows[name]["reject_reason"], name
        assert logged[name]["path"] == f"outbox/{AGENT}/{name}"
        assert reason in logged[name]["reason"], name
        assert logged[name]["position"] == position, name
        if position:
            assert f"(at {position})" in rows[name]["reject_reason"]


def test_valid_siblings_of_bad_files_are_imported(bad_root: Path) -> None:
    """Good files, and the good pairs of partly bad files, reach the corpus."""
    config = make_config(bad_root)
    run_once(config)
    rows = batches(config)
    for name in ("good_qa_pairs.json", "mixed_qa_pairs.json", "lines.jsonl"):
        assert rows[name]["state"] == S.IMPORTED, name
    assert (
        rows["mixed_qa_pairs.json"]["pairs_valid"],
        rows["mixed_qa_pairs.json"]["pairs_invalid"],
    ) == (2, 4)
    stored = query(config, "SELECT question, indicator, session FROM pairs ORDER BY id")
    assert len(stored) == 3 + 2 + 2
    by_question = {r["question"]: r for r in stored}
    assert by_question[pair(10)["question"]]["indicator"] == "rsi"
    assert by_question[pair(10)["question"]]["session"] == 2
    assert by_question[pair(0)["question"]]["indicator"] == "good"


def test_unsafe_files_are_refused_and_never_read(bad_root: Path) -> None:
    """A symlink to /etc/passwd and a FIFO are refused in the log and get no batch."""
    config = make_config(bad_root)
    events = run_once(config)
    refused = {Path(e["path"]).name: e for e in events if e["event"] == Event.FILE_REFUSED}
    assert set(refused) == {"passwd.json", "pipe.json"}
    assert refused["passwd.json"]["path"] == f"outbox/{AGENT}/passwd.json"
    assert "links outside the root (to /etc/passwd)" in refused["passwd.json"]["reason"]
    assert refused["pipe.json"]["reason"] == "refused: not a regular file"
    rows = batches(config)
    assert "passwd.json" not in rows and "pipe.json" not in rows
    stored = " ".join(r["answer"] for r in query(config, "SELECT answer FROM pairs"))
    assert "root:" not in stored


def test_feedback_for_rejected_files_names_reason_and_position(bad_root: Path) -> None:
    """Each rejected file gets Markdown and JSON feedback in inbox/<agent>/feedback/."""
    config = make_config(bad_root)
    run_once(config)
    rows = batches(config)
    folder = config.inbox_dir / AGENT / "feedback"
    for name, (reason, position) in REJECTED.items():
        md, js = feedback(config, rows[name])
        assert js["file"] == f"outbox/{AGENT}/{name}"
        assert js["imported"] == 0
        assert reason in js["rejected"]
        assert "**Rejected whole**" in md and reason in md
        if position:
            assert position in js["rejected"] and position in md
    # One Markdown and one JSON report per file with a problem, nothing else there ...
    with_problems = [r for r in rows.values() if r["state"] == S.REJECTED or r["pairs_invalid"]]
    expected = [
        path.name
        for row in with_problems
        for path in feedback_paths(config.inbox_dir, AGENT, row["path"], row["sha256"])
    ]
    # ... and one pair for each refused file (passwd.json, pipe.json): see test_intake.py.
    expected += [
        path.name
        for name in ("passwd.json", "pipe.json")
        for path in refusal_paths(config.inbox_dir, AGENT, f"outbox/{AGENT}/{name}")
    ]
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected)
    _, wrong = feedback(config, rows["wrongtypes_qa_pairs.json"])
    assert [e["position"] for e in wrong["errors"]] == ["[0]"]
    assert wrong["errors"][0]["reason"].startswith("question: Input should be a valid string")
    assert "answer: Input should be a valid string" in wrong["errors"][0]["reason"]
    _, empty = feedback(config, rows["empty_qa_pairs.json"])
    assert empty["errors"][0]["reason"] == "question: must not be empty; answer: must not be empty"


def test_feedback_for_partly_bad_files_lists_each_position_and_reason(bad_root: Path) -> None:
    """Invalid items are listed by position and field in the log, feedback and DB."""
    config = make_config(bad_root)
    events = run_once(config)
    rows = batches(config)
    md, js = feedback(config, rows["mixed_qa_pairs.json"])
    assert js["imported"] == 2 and js["rejected"] is None
    errors = [(e["position"], e["reason"].split(":")[0]) for e in js["errors"]]
    assert errors == [
        ("qa_pairs[1]", "question"),
        ("qa_pairs[2]", "question"),
        ("qa_pairs[3]", "answer"),
        ("qa_pairs[4]", "tags"),
    ]
    assert "| `qa_pairs[3]` | answer: Field required |" in md
    assert "2 pair(s) imported; 4 item(s) were not" in md
    stored = query(
        config,
        "SELECT position, reason FROM batch_errors WHERE batch_id = ? ORDER BY id",
        [rows["mixed_qa_pairs.json"]["id"]],
    )
    assert [(r["position"], r["reason"]) for r in stored] == [
        (e["position"], e["reason"]) for e in js["errors"]
    ]
    _, lines = feedback(config, rows["lines.jsonl"])
    assert [e["position"] for e in lines["errors"]] == ["line 2"]
    assert lines["errors"][0]["reason"].startswith("not valid JSON")
    invalid = events_named(events, Event.FILE_INVALID_PAIRS)
    assert invalid["mixed_qa_pairs.json"]["invalid"] == 4
    assert invalid["mixed_qa_pairs.json"]["first"].startswith("qa_pairs[1]: question:")
    assert invalid["lines.jsonl"]["first"].startswith("line 2: not valid JSON")
    assert "good_qa_pairs.json" not in invalid


def test_readable_but_invalid_originals_are_archived(bad_root: Path) -> None:
    """Readable rejected files are archived byte for byte; an oversized one is not copied."""
    config = make_config(bad_root)
    run_once(config)
    rows = batches(config)
    for name in REJECTED.keys() - {"huge_qa_pairs.json"}:
        archived = config.state_dir / rows[name]["archive_path"]
        assert archived.is_relative_to(config.archive_dir)
        assert archived.read_bytes() == (bad_root / "outbox" / AGENT / name).read_bytes()
    assert rows["huge_qa_pairs.json"]["archive_path"] is None


def test_a_second_run_changes_nothing(bad_root: Path) -> None:
    """Restarting on the same root neither re-imports, re-rejects nor re-refuses anything new."""
    config = make_config(bad_root)
    run_once(config)
    before = (batches(config), query(config, "SELECT count(*) AS n FROM transitions"))
    events = run_once(config)
    assert (batches(config), query(config, "SELECT count(*) AS n FROM transitions")) == before
    again = {Event.FILE_REJECTED, Event.FILE_INVALID_PAIRS, Event.FILE_DETECTED}
    assert not [e for e in events if e["event"] in again and "batch" in e]


def test_fixing_a_rejected_file_supersedes_the_rejection(fresh_root: Path) -> None:
    """A fixed rewrite is imported and supersedes the rejected version (feedback kept)."""
    config = make_config(fresh_root)
    path = outbox_file(fresh_root, "rsi_qa_pairs.json", TRUNCATED)
    run_once(config)
    old = batches(config)["rsi_qa_pairs.json"]
    assert old["state"] == S.REJECTED
    path.write_bytes(as_json(pairs(2)))
    run_once(config)
    new = batches(config)["rsi_qa_pairs.json"]
    assert new["id"] != old["id"] and new["state"] == S.IMPORTED
    assert query(config, "SELECT state FROM batches WHERE id = ?", [old["id"]]) == [
        {"state": S.SUPERSEDED}
    ]
    md_old, _ = feedback_paths(config.inbox_dir, AGENT, old["path"], old["sha256"])
    assert md_old.exists()


def test_huge_jsonl_and_huge_binary_are_rejected_by_size(fresh_root: Path) -> None:
    """The size limit applies before anything is decoded, whatever the content."""
    config = make_config(fresh_root, max_file_bytes=1_000)
    outbox_file(fresh_root, "big.jsonl", as_jsonl(pairs(50)))
    outbox_file(fresh_root, "big.json", os.urandom(5_000))
    outbox_file(fresh_root, "ok.jsonl", as_jsonl(pairs(2)))
    run_once(config)
    rows = batches(config)
    assert rows["big.jsonl"]["state"] == rows["big.json"]["state"] == S.REJECTED
    assert "byte 1,001" in rows["big.json"]["reject_reason"]
    assert rows["ok.jsonl"]["state"] == S.IMPORTED


# -- the feedback writer ---------------------------------------------------------------


def test_feedback_of_two_versions_of_a_file_are_kept_apart(tmp_path: Path) -> None:
    """Each version (sha256) of a file has its own feedback files."""
    relpath = f"outbox/{AGENT}/session_03/sma_qa_pairs.json"
    first = write_feedback(
        tmp_path, agent=AGENT, relpath=relpath, sha256="a" * 64, imported=1, errors=[]
    )
    second = write_feedback(
        tmp_path, agent=AGENT, relpath=relpath, sha256="b" * 64, imported=2, errors=[]
    )
    assert first != second and first.exists() and second.exists()
    assert first.name == "session_03__sma_qa_pairs.aaaaaaaa.md"
    assert first.with_name("session_03__sma_qa_pairs.aaaaaaaa.json").exists()


def test_feedback_table_survives_pipes_and_newlines_and_is_capped(tmp_path: Path) -> None:
    """Reasons cannot break the table, 200 rows are shown, and the JSON keeps all verbatim."""
    errors = [PairError("[0]", "a | b\nc")] + [PairError(f"[{i}]", "bad") for i in range(1, 250)]
    md = write_feedback(
        tmp_path, agent=AGENT, relpath="outbox/a/x.json", sha256="c" * 64, imported=0, errors=errors
    )
    text = md.read_text()
    assert "| `[0]` | a / b c |" in text
    assert "| ... | 50 more |" in text
    assert sum(line.startswith("| `[") for line in text.splitlines()) == 200
    data = json.loads(md.with_name(md.name.removesuffix(".md") + ".json").read_text())
    assert len(data["errors"]) == 250 and data["errors"][0]["reason"] == "a | b\nc"
