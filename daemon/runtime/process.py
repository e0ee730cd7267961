"""Ending or replacing the daemon's process, for ``inboxd run`` once the service has
stopped: re-executing after a changed config, or exiting at once past a worker thread
that is still blocked."""

from __future__ import annotations

import os
import sys


def exit_now(code: int = 0) -> None:
    """End the process at once with ``code``, its output flushed: used when a worker
    thread is still blocked (in a hung call, or inside a native library that aborts if
    the interpreter finalises around it). Everything it did is already in SQLite."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def reexec() -> None:
    """Replace this process with a fresh start of the same command line (same pid, so
    systemd keeps tracking it; the root lock's descriptor closes on exec)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)  # noqa: S606 - our own command line, as started
