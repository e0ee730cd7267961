"""The worker's heartbeat: how long work proves it is alive and learns it must stop.

Long work (an embedding chunk, a corpus run's kNN graph, a Gemini call) calls
:func:`beat` between bounded pieces, or :func:`expect` before a blocking call whose
bound it knows (an HTTP request with a timeout). The supervisor feeds systemd's
watchdog only while the worker's deadline lies ahead, so a worker stuck past its own
bound is caught; and a stop request surfaces at the next beat as :class:`WorkCancelled`,
so SIGTERM ends long work at a chunk boundary. Code running outside a worker (a CLI
command, a test) has no heartbeat bound and both calls do nothing.
"""

from __future__ import annotations

import threading
import time
from contextvars import ContextVar


class WorkCancelled(BaseException):
    """The daemon is stopping: unwind to the worker loop. A BaseException so that the
    ``except Exception`` handlers that keep one failure from stopping the rest let it
    through; transactions still roll back on it."""


class Heartbeat:
    """One worker's liveness deadline and its stop flag."""

    def __init__(self, stall_seconds: float, stop: threading.Event | None = None) -> None:
        self.stall_seconds = stall_seconds
        self.stop = stop or threading.Event()
        self._deadline = time.monotonic() + stall_seconds
        self.idle = True

    def beat(self) -> None:
        """Progress was made; the next beat is due within ``stall_seconds``."""
        self.expect(0.0)

    def expect(self, seconds: float) -> None:
        """The next beat may take ``seconds`` more than usual (a bounded blocking call)."""
        if self.stop.is_set():
            raise WorkCancelled
        self._deadline = time.monotonic() + self.stall_seconds + seconds

    def alive(self, now: float | None = None) -> bool:
        """Idle, or working within its deadline (``now`` is ``time.monotonic()``)."""
        return self.idle or (time.monotonic() if now is None else now) < self._deadline


_CURRENT: ContextVar[Heartbeat | None] = ContextVar("inboxd_heartbeat", default=None)


def bind(heartbeat: Heartbeat | None) -> None:
    """Make ``heartbeat`` the one this thread's work reports to."""
    _CURRENT.set(heartbeat)


def beat() -> None:
    """Report progress (and stop here if the daemon is stopping)."""
    current = _CURRENT.get()
    if current is not None:
        current.beat()


def expect(seconds: float) -> None:
    """Announce a blocking call bounded by ``seconds`` (and stop here if stopping)."""
    current = _CURRENT.get()
    if current is not None:
        current.expect(seconds)
