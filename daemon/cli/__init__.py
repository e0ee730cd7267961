"""The ``inboxd`` command line: one module per command group, all thin over plain
functions (``app`` holds the group, the daemon and search commands)."""

from daemon.cli.app import main

__all__ = ["main"]
