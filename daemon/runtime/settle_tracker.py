"""When a file is complete: unchanged for the settle window, and closed after writing
if the watcher saw it being written. Time is passed in, so tests drive it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

Signature = tuple[int, int, int, int]

# A writer whose close event we never saw (a lost event, a network file system) is
# trusted after this many settle windows of silence.
_UNCLOSED_PATIENCE = 10


def signature(path: Path) -> Signature | None:
    """What changes when a file is written: size, mtime, ctime, inode (None: gone)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        try:
            st = path.lstat()  # a link to nothing settles as itself, and is refused
        except OSError:
            return None
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@dataclass
class _Pending:
    signature: Signature | None
    changed_at: float
    writing: bool | None  # None: seen, but neither a write nor a close (yet)


class SettleTracker:
    """Paths seen but not yet taken, with when they last changed."""

    def __init__(self, settle_seconds: float) -> None:
        self.settle_seconds = settle_seconds
        self._pending: dict[Path, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def observe(self, path: Path, now: float, *, writing: bool | None = None) -> bool:
        """Note that ``path`` was seen; ``writing`` True on a write, False on a close.

        Returns True the first time the path is pending (to log ``file.detected``).
        """
        sig = signature(path)
        entry = self._pending.get(path)
        if entry is None:
            self._pending[path] = _Pending(sig, now, writing)
            return True
        if sig != entry.signature:
            entry.signature, entry.changed_at = sig, now
        if writing is not None:
            entry.writing = writing
        return False

    def due(self, now: float) -> list[Path]:
        """Paths complete now; they leave the tracker. Vanished paths are dropped."""
        ready: list[Path] = []
        for path, entry in list(self._pending.items()):
            sig = signature(path)
            if sig is None:
                del self._pending[path]
                continue
            if sig != entry.signature:
                entry.signature, entry.changed_at = sig, now
                continue
            quiet = now - entry.changed_at
            # Being written, or created and still empty (opened, nothing flushed yet).
            unclosed = entry.writing or (entry.writing is None and sig[0] == 0)
            patience = self.settle_seconds * (_UNCLOSED_PATIENCE if unclosed else 1)
            if quiet >= patience:
                ready.append(path)
                del self._pending[path]
        return sorted(ready)

    def is_pending(self, path: Path) -> bool:
        return path in self._pending
