"""A running ``inboxd run`` process and its folders: what it takes, when, and what it
leaves alone. Real files, the real watchdog observer, real SQLite."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    Daemon,
    assert_consistent,
    batches,
    copy_tree,
    drop,
    encode_qa,
    qa_pairs,
    query,
)

pytestmark = pytest.mark.slow  # every test here starts a daemon process

EXAMPLE_QA = {
    "outbox/droid/ema_qa_pairs.json": ["[0]"],
    "outbox/droid/session_02/sma_qa_pairs.json": ["qa_pairs[0]", "qa_pairs[1]"],
    "outbox/droid/wma_qa_pairs.jsonl": ["line 1", "line 2"],
}


def _positions_by_path(root: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path, position in query(
        root,
        "SELECT b.path, s.position FROM pair_sources s JOIN batches b ON b.id = s.batch_id"
        " ORDER BY b.path, s.position",
    ):
        found.setdefault(path, []).append(position)
    return found


def test_examples_dropped_into_running_daemon_import_exactly_their_pairs_progress_and_signal(
    root: Path, examples_root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """The example tree dropped into a running root: its 5 pairs, progress and signal."""
    daemon = make_daemon(root).start()
    copy_tree(examples_root / "inbox", root / "inbox")
    copy_tree(examples_root / "outbox", root / "outbox")

    daemon.wait_done(EXAMPLE_QA)
    daemon.wait_until(
        lambda: query(root, "SELECT 1 FROM signals") and query(root, "SELECT 1 FROM progress"),
        what="the signal and the progress rows",
    )

    assert sorted(b["path"] for b in batches(root)) == sorted(EXAMPLE_QA)  # one batch a file
    assert query(root, "SELECT count(*) FROM pairs") == [(5,)]
    assert _positions_by_path(root) == EXAMPLE_QA
    assert query(
        root,
        "SELECT DISTINCT p.session FROM pairs p JOIN pair_sources s ON s.pair_id = p.id"
        " JOIN batches b ON b.id = s.batch_id WHERE b.path LIKE '%/session_02/%'",
    ) == [(2,)]
    assert query(
        root, "SELECT agent, sessions_complete, sessions_total, current_session FROM progress"
    ) == [("droid", 1, 43, 2)]
    assert query(root, "SELECT kind, agent, path FROM signals") == [
        ("all_sessions_complete", "droid", "outbox/droid/ALL_SESSIONS_COMPLETE.txt")
    ]
    detected = [e["path"] for e in daemon.events("file.detected") if "batch" in e]
    assert sorted(detected) == sorted(EXAMPLE_QA)
    assert daemon.events("signal.received") and daemon.events("progress.updated")
    assert daemon.alive
    assert_consistent(root)


def test_watcher_alone_sees_new_files_and_new_folders_without_a_rescan(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """With no rescan due, the watcher alone sees new files, in new folders too."""
    (root / "outbox" / "droid").mkdir()
    daemon = make_daemon(root, INBOXD_WATCH__RESCAN_SECONDS="3600").start()
    existing = "outbox/droid/ema_qa_pairs.json"
    nested = "outbox/newagent/session_07/obv_qa_pairs.json"
    (root / existing).write_bytes(encode_qa(qa_pairs("ema", 3)))
    (root / nested).parent.mkdir(parents=True)
    (root / nested).write_bytes(encode_qa(qa_pairs("obv", 2), "object", indicator="obv"))

    daemon.wait_done([existing, nested])
    assert query(root, "SELECT count(*) FROM pairs") == [(5,)]


def test_file_moved_in_from_outside_is_taken_after_one_settle_window(
    root: Path, tmp_path: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """A file mv-ed in from outside is taken after one settle window, not ten."""
    (root / "outbox" / "droid").mkdir()
    settle = 0.5
    daemon = make_daemon(
        root, INBOXD_WATCH__SETTLE_SECONDS=str(settle), INBOXD_WATCH__RESCAN_SECONDS="3600"
    ).start()
    staged = tmp_path / "staging" / "cci_qa_pairs.json"
    staged.parent.mkdir()
    staged.write_bytes(encode_qa(qa_pairs("cci", 4)))
    target = "outbox/droid/cci_qa_pairs.json"

    moved_at = time.monotonic()
    staged.rename(root / target)
    daemon.wait_for("file.detected", path=target)
    waited = time.monotonic() - moved_at

    # The unclosed-writer patience is 10 settle windows (5 s here); one window is 0.5 s.
    assert waited < 4 * settle, f"a moved-in file waited {waited:.1f}s"
    daemon.wait_done([target])


def test_file_written_slowly_in_chunks_is_imported_once_and_complete(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """A file written in chunks with long pauses is taken once, after close, whole."""
    (root / "outbox" / "droid").mkdir()
    daemon = make_daemon(root, log_level="debug").start()
    pairs = qa_pairs("slow", 30)
    data = encode_qa(pairs)
    relpath = "outbox/droid/slow_qa_pairs.json"
    step = len(data) // 4 + 1
    with (root / relpath).open("wb") as handle:
        for start in range(0, len(data), step):
            handle.write(data[start : start + step])
            handle.flush()
            time.sleep(0.5)  # 2.5 settle windows of silence, file still open

    daemon.wait_done([relpath])
    daemon.wait_rescans(2)  # later, still one batch
    assert [b["path"] for b in batches(root)] == [relpath]
    assert batches(root)[0]["pairs_valid"] == 30
    assert sorted(q for (q,) in query(root, "SELECT question FROM pairs")) == sorted(
        p["question"] for p in pairs
    )
    assert daemon.events("file.rejected") == []


def test_file_written_under_temp_name_and_renamed_into_place_is_imported_once(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """A file written under an rsync temp name is ignored, then imported once renamed."""
    (root / "outbox" / "droid").mkdir()
    daemon = make_daemon(root, log_level="debug").start()
    data = encode_qa(qa_pairs("rsi", 12), "object", indicator="rsi", session=3)
    temp = root / "outbox" / "droid" / ".rsi_qa_pairs.json.AbC123"
    with temp.open("wb") as handle:
        for start in range(0, len(data), len(data) // 3 + 1):
            handle.write(data[start : start + len(data) // 3 + 1])
            handle.flush()
            time.sleep(0.3)  # the writer is slow: 1.5 settle windows between chunks
    daemon.wait_rescans(1)  # a whole rescan walked past the temp name and took nothing
    assert query(root, "SELECT count(*) FROM batches") == [(0,)]
    relpath = "outbox/droid/rsi_qa_pairs.json"
    temp.rename(root / relpath)

    daemon.wait_done([relpath])
    daemon.wait_rescans(2)  # and later
    assert [(b["path"], b["pairs_valid"]) for b in batches(root)] == [(relpath, 12)]


def test_temporary_and_hidden_names_are_never_taken(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """Dot-files, rsync temps, *.tmp, *.swp, *~, *.part, hidden folders: never taken."""
    agent = root / "outbox" / "droid"
    agent.mkdir()
    daemon = make_daemon(root, log_level="debug").start()
    ignored = [
        ".hidden_qa_pairs.json",
        ".sma_qa_pairs.json.AbC123",
        "sma_qa_pairs.json.tmp",
        "notes_qa_pairs.tmp",
        "sma_qa_pairs.json.swp",
        "sma_qa_pairs.json~",
        "sma_qa_pairs.json.part",
        ".staging/sma_qa_pairs.json",
        "session_02/.wip/ema_qa_pairs.jsonl",
    ]
    for number, name in enumerate(ignored):
        (agent / name).parent.mkdir(parents=True, exist_ok=True)
        (agent / name).write_bytes(encode_qa(qa_pairs(f"ignored{number}", 2)))
    sentinel = "outbox/droid/sentinel_qa_pairs.json"
    drop(root / sentinel, encode_qa(qa_pairs("sentinel", 2)))

    daemon.wait_done([sentinel])
    scans = len(daemon.events("scan.completed"))
    daemon.wait_until(
        lambda: len(daemon.events("scan.completed")) >= scans + 2, what="two more rescans"
    )

    assert [b["path"] for b in batches(root)] == [sentinel]
    assert query(root, "SELECT count(*) FROM pairs") == [(2,)]
    mentioned = [
        line
        for line in daemon.lines()
        if any(str(line.get("path", "")).endswith(name) for name in ignored)
    ]
    assert mentioned == []


def test_bad_input_is_rejected_or_refused_by_name_and_the_daemon_keeps_serving(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """Garbage, cut JSON, a FIFO, a symlink out: rejected/refused by name; daemon lives."""
    agent = root / "outbox" / "droid"
    agent.mkdir()
    daemon = make_daemon(root).start()

    garbage = b"\xff\xfe\x00\x81" + random.Random(7).randbytes(4096)
    (agent / "garbage_qa_pairs.json").write_bytes(garbage)
    whole = encode_qa(qa_pairs("truncated", 6))
    (agent / "truncated_qa_pairs.json").write_bytes(whole[: len(whole) // 2])
    os.mkfifo(agent / "fifo_qa_pairs.json")
    (agent / "passwd_qa_pairs.json").symlink_to("/etc/passwd")
    mixed = encode_qa(qa_pairs("mixed", 3), "jsonl") + b'{"question": "cut off\n'
    (agent / "mixed_qa_pairs.jsonl").write_bytes(mixed)
    good = "outbox/droid/good_qa_pairs.json"
    drop(root / good, encode_qa(qa_pairs("good", 4)))

    def logged(event: str, name: str) -> bool:
        return any(name in str(e.get("path")) for e in daemon.events(event))

    daemon.wait_until(
        lambda: all(
            logged(event, name)
            for event, name in (
                ("file.rejected", "garbage_qa_pairs.json"),
                ("file.rejected", "truncated_qa_pairs.json"),
                ("file.refused", "fifo_qa_pairs.json"),
                ("file.refused", "passwd_qa_pairs.json"),
            )
        ),
        what="file.rejected / file.refused for every bad file",
    )
    daemon.wait_done([good, "outbox/droid/mixed_qa_pairs.jsonl"])

    states = {b["path"].rsplit("/", 1)[1]: b for b in batches(root)}
    assert states["garbage_qa_pairs.json"]["state"] == "rejected"
    assert "UTF-8" in states["garbage_qa_pairs.json"]["reject_reason"]
    assert states["truncated_qa_pairs.json"]["state"] == "rejected"
    assert "JSON" in states["truncated_qa_pairs.json"]["reject_reason"]
    assert "fifo_qa_pairs.json" not in states and "passwd_qa_pairs.json" not in states
    assert states["mixed_qa_pairs.jsonl"]["pairs_valid"] == 3
    assert states["mixed_qa_pairs.jsonl"]["pairs_invalid"] == 1
    refused = {e["path"].rsplit("/", 1)[1]: e["reason"] for e in daemon.events("file.refused")}
    assert "outside the root" in refused["passwd_qa_pairs.json"]
    assert "not a regular file" in refused["fifo_qa_pairs.json"]
    feedback = {p.name for p in (root / "inbox" / "droid" / "feedback").iterdir()}
    assert any(name.startswith("garbage_qa_pairs.") for name in feedback)
    assert any(name.startswith("mixed_qa_pairs.") for name in feedback)
    assert all("root:" not in q for (q,) in query(root, "SELECT question FROM pairs"))

    later = "outbox/droid/later_qa_pairs.json"
    drop(root / later, encode_qa(qa_pairs("later", 2)))
    daemon.wait_done([later])
    assert daemon.alive
    assert query(root, "SELECT count(*) FROM pairs") == [(4 + 3 + 2,)]
    assert_consistent(root)
