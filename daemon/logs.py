"""Structured logging: configured once, one JSON object a line on stdout (journald) or a
console rendering for people, and the fixed vocabulary of event names."""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger


class Event(StrEnum):
    """Every event name inboxd logs. Scripts and alerts depend on these staying put."""

    DAEMON_STARTED = "daemon.started"
    DAEMON_READY = "daemon.ready"
    DAEMON_STOPPING = "daemon.stopping"
    DAEMON_STOPPED = "daemon.stopped"
    CONFIG_RELOADED = "config.reloaded"
    SCAN_COMPLETED = "scan.completed"
    FILE_DETECTED = "file.detected"
    FILE_REFUSED = "file.refused"
    FILE_REJECTED = "file.rejected"
    FILE_INVALID_PAIRS = "file.invalid_pairs"
    FEEDBACK_WRITTEN = "feedback.written"
    BATCH_TRANSITION = "batch.transition"
    BATCH_RETRY_SCHEDULED = "batch.retry_scheduled"
    BATCH_PARKED = "batch.parked"
    SIGNAL_RECEIVED = "signal.received"
    PROGRESS_UPDATED = "progress.updated"
    ASSIGNMENT_REGISTERED = "assignment.registered"
    INDEX_SAVED = "index.saved"
    INDEX_REBUILT = "index.rebuilt"
    INDEX_LOADED = "index.loaded"
    DEDUP_DECIDED = "dedup.decided"
    MODEL_LOADED = "model.loaded"
    WATCHER_ERROR = "watcher.error"


_SECRET_MARKERS = ("api_key", "apikey", "token", "secret", "password", "authorization")


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Replace the value of any field whose name looks like a secret."""
    for key in event_dict:
        if any(marker in key.lower() for marker in _SECRET_MARKERS):
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(
    log_format: str = "json", level: str = "info", stream: TextIO | None = None
) -> None:
    """Configure structlog for the whole process (call once, at start-up)."""
    renderer: Any
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=(stream or sys.stdout).isatty())
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )


def get_logger() -> Any:
    """The process's structlog logger."""
    return structlog.get_logger("inboxd")
