"""One daemon per root: the lock ``inboxd run`` holds on ``state/inboxd.lock`` while it
runs (the file holds its pid, for the message a second daemon gets)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from daemon.core.errors import AlreadyRunningError


class RootLock:
    """One daemon per root: an exclusive ``flock`` on ``state/inboxd.lock``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunningError(
                f"another inboxd (pid {holder}) is already running on {self.path.parent.parent};"
                " stop it first (one daemon per root)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
