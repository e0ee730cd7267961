"""Atomic file writes: temp file in the same folder, fsync, rename, fsync the folder.

Everything inboxd writes for others to read (archive, feedback, index, reports,
exports) goes through here, so a crash leaves the old file or the new one, never half.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from daemon.core.logs import Event

#: Temp files are ``.<name>.<random>.tmp``; the name is cut to this many bytes so a
#: temp name fits the file system's 255 bytes whatever the final name.
_TEMP_NAME_BYTES = 64
TEMP_SUFFIX = ".tmp"


def temp_prefix(path: Path) -> str:
    """The prefix of a temp file for ``path`` (for ``tempfile.mkstemp``)."""
    head = os.fsencode(path.name)[:_TEMP_NAME_BYTES].decode("utf-8", "ignore")
    return f".{head}."


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of our temp files."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_temp_files(folder: Path) -> tuple[int, int]:
    """Remove temp files a killed process left under ``folder``; (files, bytes).

    Only for folders this process alone writes (it holds the root's lock).
    """
    files = size = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            if is_temp_name(name):
                path = Path(dirpath, name)
                try:
                    found = path.lstat().st_size
                    path.unlink()
                except FileNotFoundError:
                    continue
                files, size = files + 1, size + found
    return files, size


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_leftover_temp_files(folders: Iterable[Path], log: Any) -> None:
    """At start, under the root's lock: temp files a killed process left in ``folders``
    (the index and the archive, which only the daemon writes) are removed and logged."""
    for folder in folders:
        files, size = remove_temp_files(folder)
        if files:
            log.info(Event.TEMP_REMOVED, folder=str(folder), files=files, bytes=size)


def write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    write_bytes(path, text.encode("utf-8"), mode)


def write_text_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    """Replace ``path`` with ``text`` unless it already holds exactly that; True if
    written. Rewritten reports keep their mtime, so a reader watching them sees no churn."""
    try:
        if path.read_bytes() == text.encode("utf-8"):
            return False
    except OSError:
        pass
    write_text(path, text, mode)
    return True
