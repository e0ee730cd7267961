"""Structured logging: configured once, one JSON object a line on stdout (journald) or a
console rendering for people, optionally also JSON lines in a size-rotated file, and the
fixed vocabulary of event names."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

from daemon.errors import ConfigError


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
    REPORT_WRITTEN = "report.written"
    CORPUS_HOOK_FAILED = "corpus.hook_failed"
    CORPUS_WORK_FAILED = "corpus.work_failed"
    SEARCH_SERVING = "search.serving"
    SEARCH_SERVED = "search.served"
    SEARCH_NOT_SERVED = "search.not_served"
    GAPS_DISPATCHED = "gaps.dispatched"
    INDEX_SAVED = "index.saved"
    INDEX_REBUILT = "index.rebuilt"
    INDEX_LOADED = "index.loaded"
    DEDUP_DECIDED = "dedup.decided"
    MODEL_LOADED = "model.loaded"
    MODEL_EXPORTING = "model.exporting"
    MODEL_EXPORTED = "model.exported"
    MODEL_SKIPPED = "model.skipped"
    WATCHER_ERROR = "watcher.error"
    JOB_SUBMITTED = "job.submitted"
    JOB_POLLED = "job.polled"
    JOB_COMPLETED = "job.completed"
    JOB_FAILED = "job.failed"
    JOB_RECOVERED = "job.recovered"
    BUDGET_REACHED = "budget.reached"
    GEMINI_RETRY = "gemini.retry"
    JUDGE_MALFORMED = "judge.malformed"
    ENHANCE_DONE = "enhance.done"


_SECRET_MARKERS = ("api_key", "apikey", "token", "secret", "password", "authorization")


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Replace the value of any field whose name looks like a secret."""
    for key in event_dict:
        if any(marker in key.lower() for marker in _SECRET_MARKERS):
            event_dict[key] = "[redacted]"
    return event_dict


class RotatingFileSink:
    """A processor that also appends each event as one JSON line to a size-rotated file.

    It sits just before the renderer, so the file gets every event the stream gets
    (same level filter, timestamps, redaction), always as JSON whatever the stream's
    format, and passes the event on unchanged. Rotation is the standard library's
    ``RotatingFileHandler``: ``inboxd.log`` -> ``inboxd.log.1`` ... ``.<backups>``, the
    oldest dropped, so the file's disk use is bounded by ``(backups + 1) * max_bytes``.
    Only one process may write a given file (rotation is not safe across processes):
    the daemon, which holds the root's lock.
    """

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self._render = structlog.processors.JSONRenderer(sort_keys=False)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
        except OSError as exc:
            raise ConfigError(f"log_file: cannot write {path}: {exc.strerror}") from exc
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
        line = self._render(logger, name, dict(event_dict))
        level = logging.getLevelNamesMapping().get(str(event_dict.get("level", "")).upper())
        record = logging.makeLogRecord({"msg": line, "levelno": level or logging.INFO})
        # emit() (not handle()) skips the handler's own filters; it rotates, writes and
        # flushes under the handler's lock, and reports (never raises) an I/O error.
        self._handler.emit(record)
        return event_dict

    def close(self) -> None:
        self._handler.close()


_file_sink: RotatingFileSink | None = None


def configure_logging(
    log_format: str = "json",
    level: str = "info",
    stream: TextIO | None = None,
    *,
    log_file: Path | None = None,
    log_file_max_bytes: int = 10 * 1024 * 1024,
    log_file_backups: int = 5,
) -> None:
    """Configure structlog for the whole process (call once, at start-up).

    ``log_file``: also append JSON lines there, rotated at ``log_file_max_bytes``.
    """
    global _file_sink
    renderer: Any
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=(stream or sys.stdout).isatty())
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    if _file_sink is not None:  # configured again (tests): do not leak the old file
        _file_sink.close()
        _file_sink = None
    if log_file is not None:
        _file_sink = RotatingFileSink(log_file, log_file_max_bytes, log_file_backups)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            *([_file_sink] if _file_sink is not None else []),
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
