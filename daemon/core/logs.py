"""Structured logging: configured once, one JSON object a line on stdout (journald) or a
console rendering for people, optionally also JSON lines in a size-rotated file, and the
fixed vocabulary of event names."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, WrappedLogger

from daemon.core.errors import ConfigError
from daemon.core.textid import printable


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
    FILE_DEFERRED = "file.deferred"
    FILE_REJECTED = "file.rejected"
    FILE_INVALID_PAIRS = "file.invalid_pairs"
    FEEDBACK_WRITTEN = "feedback.written"
    BATCH_TRANSITION = "batch.transition"
    BATCH_RETRY_SCHEDULED = "batch.retry_scheduled"
    BATCH_PARKED = "batch.parked"
    BATCH_PROGRESS = "batch.progress"
    BATCH_SKIPPED = "batch.skipped"
    BATCH_HOOK_FAILED = "batch.hook_failed"
    SIGNAL_RECEIVED = "signal.received"
    PROGRESS_UPDATED = "progress.updated"
    ASSIGNMENT_REGISTERED = "assignment.registered"
    REPORT_WRITTEN = "report.written"
    CORPUS_HOOK_FAILED = "corpus.hook_failed"
    CORPUS_WORK_FAILED = "corpus.work_failed"
    LOOP_STEP_FAILED = "loop.step_failed"
    LOOP_SLOW_ITERATION = "loop.slow_iteration"
    WORKER_STARTED = "worker.started"
    WORKER_STOPPED = "worker.stopped"
    WORKER_ABANDONED = "worker.abandoned"
    WORKER_STALLED = "worker.stalled"
    SEARCH_SERVING = "search.serving"
    SEARCH_SERVED = "search.served"
    SEARCH_NOT_SERVED = "search.not_served"
    SEARCH_VOCABULARY_READY = "search.vocabulary_ready"
    SEARCH_VOCABULARY_FAILED = "search.vocabulary_failed"
    MCP_STARTED = "mcp.started"
    MCP_CALLED = "mcp.called"
    GAPS_DISPATCHED = "gaps.dispatched"
    INDEX_SAVED = "index.saved"
    CHROMA_SYNCED = "chroma.synced"
    CHROMA_SYNC_FAILED = "chroma.sync_failed"
    INDEX_REBUILT = "index.rebuilt"
    INDEX_LOADED = "index.loaded"
    DEDUP_DECIDED = "dedup.decided"
    CLUSTERS_REHOMED = "clusters.rehomed"
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
    OPENAI_RETRY = "openai.retry"
    JUDGE_MALFORMED = "judge.malformed"
    ENHANCE_DONE = "enhance.done"
    TEMP_REMOVED = "state.temp_removed"
    LIBRARY_LOG = "library.log"


#: Field names whose values are secrets, compared whole and case-blind: a marker
#: contained in the name would also hide ``input_tokens`` or ``max_tokens``.
SECRET_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "gemini_api_key",
        "google_api_key",
        "x_goog_api_key",
        "x-goog-api-key",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth_token",
        "bearer",
        "secret",
        "client_secret",
        "password",
        "passwd",
        "authorization",
        "cookie",
        "credentials",
    }
)


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Replace the value of any field named as a secret."""
    for key in event_dict:
        if key.lower() in SECRET_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def printable_text(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Escape what cannot be written as UTF-8 (a file name that is not UTF-8 arrives as
    lone surrogates), so no log line fails to print."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = printable(value)
    return event_dict


class LibraryLogBridge(logging.Handler):
    """Standard-library log records (watchdog's "Inotify queue overflowed", say) as
    structlog events: JSON like every other line, not plain text in the stream.

    A message repeated within ``window`` seconds is counted, not printed: the next one
    printed carries ``repeated`` (an inotify overflow storm logged 19,119 lines).
    """

    def __init__(self, window: float = 10.0) -> None:
        super().__init__(logging.WARNING)
        self.window = window
        self._last: dict[tuple[str, str], tuple[float, int]] = {}
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        with self._guard:
            since, repeated = self._last.get(key, (float("-inf"), 0))
            if now - since < self.window:
                self._last[key] = (since, repeated + 1)
                return
            self._last[key] = (now, 0)
        try:
            fields: dict[str, Any] = {"logger": record.name, "message": record.getMessage()}
            if repeated:
                fields["repeated"] = repeated
            if record.exc_info:
                fields["exc_info"] = record.exc_info
            get_logger().log(record.levelno, Event.LIBRARY_LOG, **fields)
        except Exception:  # noqa: BLE001 - logging must never raise into the library
            self.handleError(record)


_bridge: LibraryLogBridge | None = None


def _bridge_library_logs() -> None:
    """Route the root logger (every library's) through structlog, once per process."""
    global _bridge
    root = logging.getLogger()
    if _bridge is not None:
        root.removeHandler(_bridge)
    _bridge = LibraryLogBridge()
    root.addHandler(_bridge)


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


class CurrentStream:
    """``sys.stdout`` or ``sys.stderr`` as they are at each write, not at start-up.

    A progress bar on a terminal (rich) swaps ``sys.stderr``/``sys.stdout`` for proxies
    that print above the bar; a logger holding the original file would draw through it.
    """

    def __init__(self, name: str) -> None:
        if name not in ("stdout", "stderr"):
            raise ValueError(f"not a standard stream: {name}")
        self.name = name

    def _target(self) -> TextIO:
        target: TextIO = getattr(sys, self.name)
        return target

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return self._target().isatty()


def current_stream(name: str) -> Any:
    """A stream that follows ``sys.<name>`` (``stdout`` or ``sys.stderr``) as it changes."""
    return CurrentStream(name)


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
            printable_text,
            *([_file_sink] if _file_sink is not None else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
    _bridge_library_logs()


#: What every module logs through (structlog's filtering logger).
Logger = FilteringBoundLogger


def get_logger() -> Logger:
    """The process's structlog logger."""
    return cast(Logger, structlog.get_logger("inboxd"))
