"""Tell systemd how the daemon is doing: readiness, watchdog pings, reloads, stopping.

This speaks the sd_notify datagram protocol documented in sd_notify(3) directly
with the standard library instead of linking libsystemd: the service manager puts
the path of a Unix datagram socket in ``NOTIFY_SOCKET`` (a leading ``@`` means a
socket in the abstract namespace, i.e. a leading NUL byte), and the service sends it
newline-separated ``KEY=VALUE`` assignments in one UTF-8 datagram, e.g.
``READY=1\\nSTATUS=watching 3 agents``.

Outside systemd (a terminal, tests, a container) ``NOTIFY_SOCKET`` is unset, the
notifier is disabled and every method is a no-op, so callers never check first.
A failed send never raises: losing a status line must not take the daemon down,
and a lost ``WATCHDOG=1`` is already what the watchdog exists to notice.

How the daemon uses it (the unit is ``systemd/inboxd.service``, ``Type=notify``)::

    notifier = SystemdNotifier.from_env()
    ...start-up: migrate DB, load index and model...
    notifier.ready("watching /var/lib/inboxd")
    interval = notifier.watchdog_interval()   # ping this often, None = never
    ...on SIGHUP: notifier.reloading(); re-read config; notifier.ready()
    ...on SIGTERM: notifier.stopping(); drain; exit 0
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Mapping

__all__ = ["SystemdNotifier"]

# A send is a local datagram to PID 1; if it cannot go through within this time
# the manager is wedged and waiting longer would only stall the daemon's own loop.
_SEND_TIMEOUT_SECONDS = 2.0


def _socket_address(raw: str | None) -> bytes | None:
    """The ``sendto`` address for a ``NOTIFY_SOCKET`` value, or None if unusable.

    Only the two Unix forms of sd_notify(3) are supported: an absolute path and
    ``@name`` for the abstract namespace.  Anything else (empty, relative, or the
    ``vsock:`` form used for virtual machines) disables notification rather than
    guessing.
    """
    if not raw:
        return None
    if raw.startswith("@"):
        # The kernel names abstract sockets by a leading NUL byte; "@" is only how
        # the name is spelled in an environment variable.
        return b"\0" + os.fsencode(raw[1:])
    if raw.startswith("/"):
        return os.fsencode(raw)
    return None


def _parse_positive_int(raw: str | None) -> int | None:
    """``raw`` as a positive integer, None if missing, malformed or not positive."""
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        return None
    return value if value > 0 else None


class SystemdNotifier:
    """Sends sd_notify(3) messages to the service manager, or nothing when there is none."""

    def __init__(
        self,
        address: bytes | None,
        watchdog_usec: int | None = None,
        watchdog_pid: int | None = None,
    ) -> None:
        """Use ``from_env``; this constructor takes already parsed values (for tests)."""
        self._address = address
        self._watchdog_usec = watchdog_usec
        self._watchdog_pid = watchdog_pid
        self.enabled: bool = address is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        """Build a notifier from ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``.

        ``environ`` defaults to ``os.environ``.  The variables are left in place:
        with ``NotifyAccess=main`` systemd ignores messages from any child that
        inherits them, and the daemon's own code may build a notifier again.
        """
        env = os.environ if environ is None else environ
        return cls(
            _socket_address(env.get("NOTIFY_SOCKET")),
            watchdog_usec=_parse_positive_int(env.get("WATCHDOG_USEC")),
            watchdog_pid=_parse_positive_int(env.get("WATCHDOG_PID")),
        )

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` assignments as one datagram; True if it was sent.

        Never raises: a disabled notifier, a missing socket or a refused send all
        return False.
        """
        if self._address is None or not assignments:
            return False
        # "replace": a file name with undecodable bytes in a status line must not
        # turn into an exception; systemd only accepts UTF-8 anyway.
        payload = "\n".join(assignments).encode("utf-8", errors="replace")
        # ValueError: a path with a NUL byte (only possible through from_env's
        # mapping, never through a real environment).
        # A fresh socket per message, as sd_notify(3) does: nothing to keep open
        # across fork() or a manager restart, and a ping every 30 s costs nothing.
        # Python sockets are close-on-exec already.
        with (
            contextlib.suppress(OSError, ValueError),
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
        ):
            sock.settimeout(_SEND_TIMEOUT_SECONDS)
            sock.sendto(payload, self._address)
            return True
        return False

    def ready(self, status: str | None = None) -> None:
        """Report start-up (or a reload) finished: ``READY=1``, with ``STATUS=`` if given."""
        if status is None:
            self.notify("READY=1")
        else:
            self.notify("READY=1", _status_assignment(status))

    def watchdog(self) -> None:
        """Ping the watchdog: ``WATCHDOG=1``."""
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        """Report that a drain has begun: ``STOPPING=1``."""
        self.notify("STOPPING=1")

    def reloading(self) -> None:
        """Report a config reload has begun: ``RELOADING=1`` and ``MONOTONIC_USEC=``.

        The service stays "reloading" until the next ``ready()``.  MONOTONIC_USEC
        (CLOCK_MONOTONIC, microseconds) lets systemd >= 253 tell this reload apart
        from an older one; earlier versions ignore it.
        """
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={now_usec}")

    def status(self, text: str) -> None:
        """Set the one-line status shown by ``systemctl status``: ``STATUS=...``."""
        self.notify(_status_assignment(text))

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings (half of ``WATCHDOG_USEC``), or None for no pings.

        None when the watchdog is off, or when ``WATCHDOG_PID`` names another
        process (the variables were inherited, the watchdog is not ours to feed).
        Half the timeout, as sd_watchdog_enabled(3) recommends, leaves room for
        one late ping.
        """
        if self._watchdog_usec is None:
            return None
        if self._watchdog_pid is not None and self._watchdog_pid != os.getpid():
            return None
        return self._watchdog_usec / 2 / 1_000_000


def _status_assignment(text: str) -> str:
    """``STATUS=text`` flattened to one line: a newline would start a new assignment."""
    return "STATUS=" + " ".join(text.splitlines())
