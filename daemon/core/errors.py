"""The one exception hierarchy of inboxd.

    InboxdError                  anything inboxd raises on purpose
    ├── ConfigError              a bad setting; names the key (start-up stops)
    ├── AlreadyRunningError      another daemon holds the root's lock
    ├── TransientError           worth retrying with backoff (disk full, busy DB, 429/5xx)
    └── PermanentError           retrying will not help
        ├── InputError           an agent's file cannot be used; names file, position, reason
        └── InvalidTransitionError  a move the state machine does not allow (a bug)

Third-party errors are translated where they are caught, with ``raise ... from exc``.
"""

from __future__ import annotations


class InboxdError(Exception):
    """Base of every error inboxd raises on purpose."""


class ConfigError(InboxdError):
    """A configuration value is missing or invalid."""


class AlreadyRunningError(InboxdError):
    """Another inboxd process already serves this root."""


class TransientError(InboxdError):
    """A failure that may go away: the step is retried with backoff."""


class PermanentError(InboxdError):
    """A failure that will not go away by retrying."""


class InputError(PermanentError):
    """An input file cannot be used at all.

    ``position`` is where reading stopped, e.g. ``line 3, column 17`` or ``byte 104857601``.
    """

    def __init__(self, path: str, reason: str, position: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.position = position
        where = f" at {position}" if position else ""
        super().__init__(f"{path}{where}: {reason}")


class InvalidTransitionError(PermanentError):
    """The state machine was asked for a move its table does not allow."""
