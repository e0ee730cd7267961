"""The folder protocol: which paths are input, which names are temporary, and which
files may be opened at all (regular files inside the root, nothing else)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from builders import write

from daemon.core.errors import InputError
from daemon.ingest.layout import (
    FileKind,
    assignment_session,
    classify,
    is_temporary,
    open_regular,
    walk,
)


@pytest.mark.parametrize(
    "name",
    [
        ".sma_qa_pairs.json",
        ".sma_qa_pairs.json.Xy12Ab",  # rsync's temporary name
        "sma_qa_pairs.json.tmp",
        "sma_qa_pairs.json.part",
        ".sma_qa_pairs.json.swp",
        "sma_qa_pairs.json~",
        "sma_qa_pairs.json.crdownload",
    ],
)
def test_temporary_names_are_recognised(name: str) -> None:
    """Names writers use while a file is incomplete are temporary."""
    assert is_temporary(name)


@pytest.mark.parametrize("name", ["sma_qa_pairs.json", "x.jsonl", "status.txt", "tmp.json"])
def test_ordinary_names_are_not_temporary(name: str) -> None:
    """Finished file names are not temporary."""
    assert not is_temporary(name)


@pytest.mark.parametrize(
    ("relpath", "kind"),
    [
        ("outbox/a1/sma_qa_pairs.json", FileKind.QA),
        ("outbox/a1/session_02/rsi_qa_pairs.json", FileKind.QA),
        ("outbox/a1/session_02/batch.JSONL", FileKind.QA),
        ("outbox/a1/status.txt", FileKind.STATUS),
        ("outbox/a1/ALL_SESSIONS_COMPLETE.txt", FileKind.SIGNAL),
        ("inbox/a1/session-07-assignment.md", FileKind.ASSIGNMENT),
        ("outbox/a1/session_02/status.txt", None),  # status lives at the agent's top
        ("outbox/a1/notes.md", None),
        ("outbox/sma_qa_pairs.json", None),  # no agent folder
        ("outbox/a1/.hidden/sma_qa_pairs.json", None),
        ("outbox/a1/sma_qa_pairs.json.tmp", None),
        ("inbox/a1/feedback/sma.json", None),
        ("inbox/a1/sma_qa_pairs.json", None),
        ("state/archive/ab/x.json", None),
    ],
)
def test_classify_names_what_each_path_is(tmp_path: Path, relpath: str, kind: FileKind) -> None:
    """Only protocol files get a kind, with their agent and root-relative path."""
    found = classify(tmp_path, tmp_path / relpath)
    if kind is None:
        assert found is None
    else:
        assert found is not None
        assert (found.kind, found.agent, found.relpath) == (kind, "a1", relpath)


def test_classify_ignores_paths_outside_the_root(tmp_path: Path) -> None:
    """A path not under the root is nothing."""
    assert classify(tmp_path / "root", tmp_path / "outbox/a1/x.json") is None


def test_assignment_session_number() -> None:
    """``session-07-assignment.md`` is session 7; other names are None."""
    assert assignment_session("session-07-assignment.md") == 7
    assert assignment_session("session-x-assignment.md") is None


def read_fd(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def test_open_regular_reads_a_file_and_a_link_inside_the_root(tmp_path: Path) -> None:
    """Regular files, and symlinks that stay inside the root, are opened."""
    target = write(tmp_path / "outbox/a1/real.json", b"[]")
    link = tmp_path / "outbox/a1/link.json"
    link.symlink_to("real.json")
    assert read_fd(open_regular(tmp_path, target)) == b"[]"
    assert read_fd(open_regular(tmp_path, link)) == b"[]"


def test_open_regular_refuses_a_symlink_out_of_the_root(tmp_path: Path) -> None:
    """A symlink to /etc/passwd is refused, naming where it leads."""
    link = tmp_path / "outbox/a1/passwd.json"
    link.parent.mkdir(parents=True)
    link.symlink_to("/etc/passwd")
    with pytest.raises(InputError, match="links outside the root") as caught:
        open_regular(tmp_path, link)
    assert caught.value.path == str(link)
    assert "/etc/passwd" in caught.value.reason


def test_open_regular_refuses_a_relative_link_climbing_out(tmp_path: Path) -> None:
    """``../../..`` out of the root is refused like an absolute link."""
    root = tmp_path / "root"
    write(tmp_path / "secret.json", b"[]")
    link = root / "outbox/a1/s.json"
    link.parent.mkdir(parents=True)
    link.symlink_to("../../../secret.json")
    with pytest.raises(InputError, match="outside the root"):
        open_regular(root, link)


def test_open_regular_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    """A FIFO with no writer is refused at once instead of hanging the daemon."""
    fifo = tmp_path / "outbox/a1/pipe.json"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        open_regular(tmp_path, fifo)


def test_open_regular_refuses_a_directory(tmp_path: Path) -> None:
    """A folder named like a Q&A file is not a file."""
    folder = tmp_path / "outbox/a1/dir.json"
    folder.mkdir(parents=True)
    with pytest.raises(InputError, match="not a regular file"):
        open_regular(tmp_path, folder)


def test_open_regular_lets_a_missing_file_be_retried(tmp_path: Path) -> None:
    """A file that vanished raises FileNotFoundError (retry later), not bad-input InputError."""
    with pytest.raises(FileNotFoundError):
        open_regular(tmp_path, tmp_path / "outbox/a1/gone.json")


def test_walk_finds_protocol_files_and_skips_the_rest(tmp_path: Path) -> None:
    """The rescan lists protocol files only, skipping feedback, hidden, temporary and linked."""
    wanted = [
        "inbox/a1/session-01-assignment.md",
        "outbox/a1/ALL_SESSIONS_COMPLETE.txt",
        "outbox/a1/session_01/sma_qa_pairs.json",
        "outbox/a1/status.txt",
        "outbox/a1/x.jsonl",
    ]
    for relpath in [
        *wanted,
        "inbox/a1/feedback/sma_qa_pairs.a1b2c3d4.json",
        "outbox/a1/.git/x.json",
        "outbox/a1/y.json.part",
        "outbox/a1/README.md",
    ]:
        write(tmp_path / relpath, b"x")
    (tmp_path / "outbox/a1/linked").symlink_to(tmp_path / "outbox/a1/session_01")
    assert [p.relative_to(tmp_path).as_posix() for p in walk(tmp_path)] == sorted(wanted)


def test_walk_on_an_empty_root(tmp_path: Path) -> None:
    """No inbox/ or outbox/ yet: nothing to scan."""
    assert walk(tmp_path) == []
