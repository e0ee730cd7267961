"""The folder protocol: what a path under the root is, and whether it may be read."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from daemon.core.errors import InputError
from daemon.core.numbers import MAX_SESSION, bounded_int


class FileKind(StrEnum):
    QA = "qa"  # <indicator>_qa_pairs.json, *.jsonl
    STATUS = "status"  # status.txt
    SIGNAL = "signal"  # ALL_SESSIONS_COMPLETE.txt
    ASSIGNMENT = "assignment"  # inbox/<agent>/session-NN-assignment.md


STATUS_FILE = "status.txt"
COMPLETE_SIGNAL = "ALL_SESSIONS_COMPLETE.txt"
FEEDBACK_DIR = "feedback"
_ASSIGNMENT = re.compile(r"^session-([0-9]+)-assignment\.md$")
_TEMPORARY_SUFFIXES = (".tmp", ".part", ".swp", ".swx", ".crdownload", "~")


@dataclass(frozen=True)
class AgentFile:
    """A file of the protocol: its kind, its agent and its path relative to the root."""

    kind: FileKind
    agent: str
    relpath: str


def is_temporary(name: str) -> bool:
    """Names writers use while a file is incomplete: dot-files (rsync's ``.x.AbC123``
    too), ``*.tmp``, ``*.part``, editor swap files and ``*~`` backups."""
    return name.startswith(".") or name.endswith(_TEMPORARY_SUFFIXES)


def classify(root: Path, path: Path) -> AgentFile | None:
    """What ``path`` is in the protocol, or None for anything inboxd does not read."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return None
    if len(parts) < 3 or any(is_temporary(part) for part in parts):
        return None
    if FEEDBACK_DIR in parts[1:-1]:  # the daemon's own output (walk skips these folders)
        return None
    top, agent, name = parts[0], parts[1], parts[-1]
    relpath = "/".join(parts)
    if top == "outbox":
        if name == STATUS_FILE and len(parts) == 3:
            return AgentFile(FileKind.STATUS, agent, relpath)
        if name == COMPLETE_SIGNAL and len(parts) == 3:
            return AgentFile(FileKind.SIGNAL, agent, relpath)
        if name.lower().endswith((".json", ".jsonl")):
            return AgentFile(FileKind.QA, agent, relpath)
    if top == "inbox" and len(parts) == 3 and _ASSIGNMENT.match(name):
        return AgentFile(FileKind.ASSIGNMENT, agent, relpath)
    return None


def assignment_session(name: str) -> int | None:
    """The session number of a ``session-NN-assignment.md`` file name; None for other
    names; InputError when the number is out of range."""
    match = _ASSIGNMENT.match(name)
    if match is None:
        return None
    return bounded_int(
        match.group(1), maximum=MAX_SESSION, what="session number", name=name, position="file name"
    )


def open_regular(root: Path, path: Path) -> int:
    """Open ``path`` for reading if it is a regular file inside the root.

    Symlinks are followed only when they stay inside the root; FIFOs, sockets and
    devices are refused without blocking on them. Returns a file descriptor. A missing
    file raises FileNotFoundError (not InputError): it may be back on the next scan.
    """
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(os.path.realpath(root)):
        raise InputError(str(path), f"refused: it links outside the root (to {real})")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        if path.is_symlink():
            target = path.readlink()
            raise InputError(str(path), f"refused: it links to nothing ({target})") from None
        raise  # gone for now (being replaced?): callers retry, it is not bad input
    except OSError as exc:
        raise InputError(str(path), f"cannot open: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(str(path), "refused: not a regular file")
    return fd


def walk(root: Path) -> list[Path]:
    """Every protocol file under ``inbox/`` and ``outbox/``, for the full rescan."""
    found: list[Path] = []
    for top in ("inbox", "outbox"):
        base = root / top
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            # The daemon's own feedback folders and hidden folders are not input.
            dirnames[:] = [d for d in dirnames if not is_temporary(d) and d != FEEDBACK_DIR]
            # A folder (or a link to one) named like a Q&A file is listed too, to be
            # refused with a reason rather than ignored; the files in it are still read.
            for name in [*dirnames, *filenames]:
                path = Path(dirpath, name)
                if classify(root, path) is not None:
                    found.append(path)
    return sorted(found)
