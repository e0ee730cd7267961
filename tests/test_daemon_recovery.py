"""What the daemon finds again after being down, copies and renames of files it has,
new versions of files, and SIGKILL at any point of an import."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    DONE_STATES,
    TIMEOUT,
    Daemon,
    assert_consistent,
    batches,
    drop,
    encode_qa,
    imported,
    pair_questions,
    poll_until,
    qa_pairs,
    query,
    scalar,
)

pytestmark = pytest.mark.slow  # every test here starts daemon processes


def test_files_dropped_while_the_daemon_is_down_are_imported_at_the_next_start(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """Files that arrive while no daemon runs are found by the start-up scan and imported."""
    daemon = make_daemon(root, INBOXD_WATCH__RESCAN_SECONDS="3600").start()
    assert daemon.terminate() == 0
    offline = {
        "outbox/droid/adx_qa_pairs.json": encode_qa(qa_pairs("adx", 3)),
        "outbox/droid/session_04/mfi_qa_pairs.json": encode_qa(
            qa_pairs("mfi", 2), "object", session=4
        ),
        "outbox/other/vwap_qa_pairs.jsonl": encode_qa(qa_pairs("vwap", 4), "jsonl"),
    }
    for relpath, data in offline.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(data)

    daemon.start()
    daemon.wait_done(offline)
    assert query(root, "SELECT count(*) FROM pairs") == [(9,)]
    assert sorted(b["agent"] for b in batches(root)) == ["droid", "droid", "other"]
    assert_consistent(root)


def test_copies_and_renames_of_a_file_add_sources_but_never_duplicate_pairs(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """An identical copy or a rename of a file adds pair_sources rows but never a pair."""
    daemon = make_daemon(root).start()
    original = "outbox/droid/ema_qa_pairs.json"
    pairs = qa_pairs("ema", 5)
    drop(root / original, encode_qa(pairs))
    daemon.wait_done([original])
    assert scalar(root, "SELECT count(*) FROM pairs") == 5

    copy = "outbox/droid/session_03/ema_copy_qa_pairs.json"
    drop(root / copy, (root / original).read_bytes())
    daemon.wait_done([original, copy])
    renamed = "outbox/droid/ema_v1_qa_pairs.json"
    (root / original).rename(root / renamed)
    daemon.wait_done([renamed])

    assert scalar(root, "SELECT count(*) FROM pairs") == 5
    places = query(
        root,
        "SELECT p.question, b.path, s.position FROM pair_sources s"
        " JOIN pairs p ON p.id = s.pair_id JOIN batches b ON b.id = s.batch_id",
    )
    for pair in pairs:
        assert sorted(path for q, path, _ in places if q == pair["question"]) == sorted(
            [original, copy, renamed]
        )
    assert {position for _, _, position in places} == {f"[{i}]" for i in range(5)}
    assert {b["path"]: b["pairs_new"] for b in batches(root)} == {
        original: 5,
        copy: 0,
        renamed: 0,
    }
    assert_consistent(root)


def test_changed_version_supersedes_the_old_batch_and_keeps_its_pairs(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """A changed file supersedes its old batch; the old version's pairs stay in the corpus."""
    daemon = make_daemon(root).start()
    relpath = "outbox/droid/macd_qa_pairs.json"
    first = qa_pairs("macd", 3)
    drop(root / relpath, encode_qa(first))
    daemon.wait_done([relpath])
    old_id = batches(root)[0]["id"]

    second = [first[0], {**first[1], "answer": "A corrected answer about MACD signals."}]
    second += qa_pairs("macd-extra", 2)
    drop(root / relpath, encode_qa(second))
    daemon.wait_until(
        lambda: len(batches(root)) == 2 and imported(root, [relpath]), what="the new version"
    )

    old, new = batches(root)
    assert old["id"] == old_id and old["state"] == "superseded"
    assert new["state"] in DONE_STATES and new["pairs_valid"] == 4 and new["pairs_new"] == 3
    last = query(
        root,
        "SELECT from_state, to_state, detail FROM transitions WHERE batch_id = ?"
        " ORDER BY id DESC LIMIT 1",
        [old_id],
    )[0]
    assert last[1] == "superseded" and f'"by": {new["id"]}' in last[2]
    questions = pair_questions(root)
    assert len(questions) == 6  # 3 old (one of them replaced) + 1 corrected + 2 extra
    answers = [a for (a,) in query(root, "SELECT answer FROM pairs")]
    assert first[1]["answer"] in answers  # the old version's pair is kept
    assert_consistent(root)


def _crash_corpus(files: int, per_file: int) -> dict[str, bytes]:
    """Deterministic Q&A files in every layout and envelope, all pairs distinct."""
    corpus: dict[str, bytes] = {}
    for n in range(files):
        pairs = qa_pairs(f"ind{n:02d}", per_file, answer_words=40)
        if n % 3 == 0:
            corpus[f"outbox/droid/ind{n:02d}_qa_pairs.json"] = encode_qa(pairs)
        elif n % 3 == 1:
            session = n % 7 + 2
            corpus[f"outbox/droid/session_{session:02d}/ind{n:02d}_qa_pairs.json"] = encode_qa(
                pairs, "object", session=session
            )
        else:
            corpus[f"outbox/droid/ind{n:02d}_qa_pairs.jsonl"] = encode_qa(pairs, "jsonl")
    return corpus


_INGEST_STATES = {"settled", "validated", "imported", "rejected"}


def _is_ingest(line: dict[str, object]) -> bool:
    """A log line of the import path: a file taken, or a move up to imported."""
    if line.get("event") == "file.detected":
        return True
    return line.get("event") == "batch.transition" and line.get("state") in _INGEST_STATES


def _work_left(root: Path, paths: list[str]) -> bool:
    """Whether a file present now is not yet imported (the kill interrupted work)."""
    present = [p for p in paths if (root / p).exists()]
    try:
        return not imported(root, present)
    except sqlite3.OperationalError:
        return True  # killed before the DB or its tables existed


def test_sigkill_at_any_point_of_an_import_loses_nothing_and_doubles_nothing(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """SIGKILL at varied points of an import, restarted: every pair once, valid paths."""
    # 40 files of 20 pairs; kills right after a logged step of the import path or at a
    # random moment (start-up, the scan, inside a transaction), up to 15 times in 35 s.
    corpus = _crash_corpus(40, 20)
    expected = sorted(
        q["question"] for n in range(40) for q in qa_pairs(f"ind{n:02d}", 20, answer_words=40)
    )
    paths = list(corpus)
    for relpath in paths:
        drop(root / relpath, corpus[relpath])

    rng = random.Random(20251124)
    daemon = make_daemon(root)

    def ingest_lines() -> int:
        return sum(_is_ingest(line) for line in daemon.lines())

    kills = interrupted = 0
    budget = time.monotonic() + 35
    while kills < 15 and time.monotonic() < budget and _work_left(root, paths):
        daemon.start(wait_ready=False)
        if rng.random() < 0.6:  # right after a step of the import path
            lines = rng.randint(1, 6)
            poll_until(lambda n=lines: ingest_lines() >= n, timeout=10)
        else:  # at a random moment: start-up, the scan, inside a step or a transaction
            poll_until(lambda: daemon.events("daemon.started"), timeout=10)
            time.sleep(rng.uniform(0.0, 0.06))  # a random moment is the point
        daemon.kill()
        kills += 1
        interrupted += _work_left(root, paths)

    daemon.start()
    daemon.wait_done(paths, timeout=TIMEOUT * 2)
    assert daemon.terminate() == 0

    assert interrupted >= 8, f"only {interrupted} of {kills} kills interrupted the import"
    assert kills >= 10
    rows = batches(root)
    assert sorted(b["path"] for b in rows) == sorted(paths)  # one batch a file, no duplicate
    assert all(b["state"] in DONE_STATES for b in rows)
    assert all(b["pairs_valid"] == 20 for b in rows)
    assert sorted(pair_questions(root)) == expected
    assert scalar(root, "SELECT count(*) FROM pair_sources") == 800
    assert_consistent(root)
    for b in rows:
        archived = root / "state" / b["archive_path"]
        assert archived.read_bytes() == corpus[b["path"]]
