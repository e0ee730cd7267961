"""The daemon's lifecycle in one object, and its supervisor loop.

start: lock the root, migrate, build the services, reconcile the folders. run: the
supervisor loop (signals, watcher events, settle, intake to ``imported``, systemd
notify; the search socket on its own thread) while the :class:`Worker` does the long
work on another. The supervisor feeds systemd's watchdog only while the worker is idle
or within its heartbeat deadline, so a hung worker is still caught. stop: the worker
at its next chunk boundary, then close and unlock. Signal handlers only set flags.
SIGHUP re-reads the config and, when it changed, re-executes the process: every
service is rebuilt from the new config, none keeps the old one.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import FrameType
from typing import TypeVar

from daemon import __version__
from daemon.core import atomic
from daemon.core.config import Config
from daemon.core.errors import ConfigError
from daemon.core.heartbeat import Heartbeat
from daemon.core.logs import Event, Logger, get_logger
from daemon.core.progress import Listener, Progress
from daemon.ingest.parsed_cache import ParsedCache
from daemon.runtime.hooks import attach_intake_hooks, attach_worker_hooks
from daemon.runtime.lock import RootLock
from daemon.runtime.notify import SystemdNotifier
from daemon.runtime.pipeline import Pipeline
from daemon.runtime.reload import changed_keys
from daemon.runtime.watcher import FolderWatcher
from daemon.runtime.wiring import build_services
from daemon.runtime.worker import MAX_BACKOFF_SECONDS, Worker
from daemon.search.server import SearchServer
from daemon.services import Hooks, Services
from daemon.stages import Stage, default_stages
from daemon.states import BatchState
from daemon.store import Store
from daemon.store.status import pair_count

T = TypeVar("T")

#: A supervisor iteration longer than this is logged (debug): intake, SIGTERM and the
#: watchdog all wait on this loop, so a slow one is what to look at first.
SLOW_ITERATION_SECONDS = 1.0


#: Builds the services from the config, the opened store and the logger; tests pass a
#: ``functools.partial(build_services, scorer=...)`` to run the daemon with their parts.
ServicesFactory = Callable[[Config, Store, Logger], Services]


class Service:
    """A running inboxd on one root."""

    def __init__(
        self,
        config: Config,
        *,
        stages: dict[BatchState, Stage] | None = None,
        services: ServicesFactory = build_services,
        reload_config: Callable[[], Config] | None = None,
        clock: Callable[[], float] = time.time,
        progress_listeners: Sequence[Listener] = (),
    ) -> None:
        self.config = config
        #: Who hears the worker's progress besides the DB (a terminal's bars).
        self._progress_listeners = progress_listeners
        self.log = get_logger()
        self.clock = clock
        self.stop_requested = threading.Event()
        self.reload_requested = False
        #: Set when SIGHUP brought a changed config: the caller re-executes after stop().
        self.reexec_requested = False
        #: Set when stop() left a blocked worker behind: the caller ends the process
        #: without the interpreter's shutdown, which would wait on (or abort in) it.
        self.worker_abandoned = False
        self._reload_config = reload_config
        self._stages = stages
        self._build_services = services
        self._lock = RootLock(config.lock_path)
        self.notifier = SystemdNotifier.from_env()
        self.store: Store | None = None
        self.pipeline: Pipeline | None = None
        self.worker: Worker | None = None
        self.watcher: FolderWatcher | None = None
        self.search_server: SearchServer | None = None
        self._warm_up: threading.Thread | None = None
        self._failures = 0
        self._stall_logged = False
        #: The longest supervisor iteration so far (its idle wait left out), in seconds.
        self.longest_iteration = 0.0

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, *, watch: bool = True) -> Pipeline:
        """Lock the root, migrate the DB, build the services, reconcile the folders and
        (with ``watch``) start watching and serving search."""
        cfg = self.config
        self._lock.acquire()
        for folder in (cfg.inbox_dir, cfg.outbox_dir, cfg.state_dir, cfg.archive_dir):
            folder.mkdir(parents=True, exist_ok=True)
        atomic.remove_leftover_temp_files((cfg.index_dir, cfg.archive_dir), self.log)
        timeout = cfg.database.busy_timeout_seconds
        self.store = Store(cfg.db_path, timeout=timeout)
        self.store.migrate()
        self.store.clear_task_progress()  # a crashed run's task is not this run's
        # Two connections: the supervisor's (intake) and the worker's (refinement); SQLite
        # serialises their short write transactions. The worker's providers write through
        # the worker's Store, and so does the search thread when it pays for a Gemini
        # query embedding: that Store's lock makes the two take turns on it.
        refining = attach_worker_hooks(
            self._build_services(cfg, Store(cfg.db_path, timeout=timeout), self.log)
        )
        # The worker's task and progress go to the DB, where `inboxd status` reads them.
        refining.progress = Progress(refining.store, self._progress_listeners)
        intake = attach_intake_hooks(
            replace(
                refining,
                store=self.store,
                hooks=Hooks(),
                parsed_cache=ParsedCache(),
                progress=Progress(),  # intake steps take milliseconds: nothing to show
            )
        )
        stages = self._stages if self._stages is not None else default_stages()
        self._stages = stages
        self.pipeline = Pipeline(intake, stages)
        self.worker = Worker(refining, stages, Heartbeat(cfg.worker.stall_seconds))
        self.log.info(
            Event.DAEMON_STARTED,
            root=str(cfg.root),
            version=__version__,
            pid=os.getpid(),
            unfinished=self.store.unfinished_count(list(stages)),
        )
        if watch:
            # Watch before the rescan: a file landing in between is then seen twice, not never.
            self.watcher = FolderWatcher([cfg.inbox_dir, cfg.outbox_dir])
            self.watcher.start()
            self._serve_search(refining)
        self.pipeline.rescan(self.clock())
        return self.pipeline

    def _serve_search(self, ctx: Services) -> None:
        """Answer ``inboxd search`` from this process's index and loaded model."""
        if not self.config.search.serve:
            return
        self.search_server = SearchServer(
            self.config.state_dir,
            self.config.db_path,
            ctx.index,
            ctx.embedder,
            ctx.catalog,
            ctx.scorer.name,
        )
        self.search_server.start()
        # Beside the loop, so that neither the first query nor the first file waits
        # for the model (or its export, on a root without one) or the spelling vocabulary.
        self._warm_up = threading.Thread(
            target=self._warm_search,
            args=(ctx, self.search_server),
            name="search-warm-up",
            daemon=True,
        )
        self._warm_up.start()

    def _warm_search(self, ctx: Services, server: SearchServer) -> None:
        if self.config.embeddings.provider == "local":  # a paid embedder is not called
            ctx.embedder.embed_query("warm-up")
        server.prepare_spelling()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: stop after the current step. SIGHUP: re-read the config."""

        def stop(signum: int, _: FrameType | None) -> None:
            self.stop_requested.set()

        def reload(signum: int, _: FrameType | None) -> None:
            self.reload_requested = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def run(self) -> None:
        """The supervisor: serve until a stop is requested, the worker beside it."""
        pipeline, worker = self._started(), self._worker()
        cfg = self.config
        next_rescan = self.clock() + cfg.watch.rescan_seconds
        ping_every = self.notifier.watchdog_interval()
        next_ping = 0.0
        worker.start()
        self.notifier.ready(status=self._status_line())
        self.log.info(Event.DAEMON_READY, root=str(cfg.root))
        while not self.stop_requested.is_set():
            started = time.monotonic()
            now = self.clock()
            if self.reload_requested:
                self._guard("reload", lambda _now: self._reload(), now, None)
                if self.reexec_requested:
                    break
            self._guard("events", self._drain_events, now, None)
            if now >= next_rescan:
                self._guard("rescan", pipeline.rescan, now, 0)
                next_rescan = now + self.config.watch.rescan_seconds
            busy = self._guard("intake", pipeline.step, now, False)
            if busy:
                worker.wake.set()  # a batch may have reached `imported`
            if ping_every is not None and time.monotonic() >= next_ping:
                self._feed_watchdog(worker)
                next_ping = time.monotonic() + ping_every
            self._note_iteration(time.monotonic() - started)
            if not busy:
                self.stop_requested.wait(self._pause())
        if self._warm_up is not None:
            # Loading takes well under a second: let it end, so that its model.loaded
            # and search.vocabulary_ready are not logged among the stop events. An
            # export still running is abandoned (it writes into a staging folder; nothing
            # half-done is used).
            self._warm_up.join(timeout=5)
        self.notifier.stopping()
        self.log.info(
            Event.DAEMON_STOPPING,
            root=str(cfg.root),
            longest_iteration_ms=round(self.longest_iteration * 1000, 1),
        )

    def run_once(self) -> None:
        """Process everything present now, then return (for cron and tests): the
        supervisor's and the worker's steps taken in turn on this thread."""
        pipeline, worker = self._started(), self._worker()
        while not self.stop_requested.is_set():
            now = self.clock()
            took = pipeline.step(now)
            worked = worker.step(now)
            if not (took or worked):
                if pipeline.idle(now) and worker.idle(now):
                    self._report_waiting_retries()
                    return
                self.stop_requested.wait(min(0.05, self.config.watch.poll_seconds))

    def _guard(self, what: str, step: Callable[[float], T], now: float, failed: T) -> T:
        """Run one supervisor step; an error is logged with its traceback and the loop
        backs off (capped) and goes on: no step's failure ends the daemon."""
        try:
            result = step(now)
        except Exception as exc:
            self._failures += 1
            self.log.exception(
                Event.LOOP_STEP_FAILED,
                loop="supervisor",
                step=what,
                error=repr(exc),
                failures=self._failures,
            )
            return failed
        self._failures = 0
        return result

    def _note_iteration(self, seconds: float) -> None:
        """Keep the longest iteration; log one slower than ``SLOW_ITERATION_SECONDS``."""
        self.longest_iteration = max(self.longest_iteration, seconds)
        if seconds > SLOW_ITERATION_SECONDS:
            self.log.debug(Event.LOOP_SLOW_ITERATION, loop="supervisor", ms=round(seconds * 1000))

    def _pause(self) -> float:
        """The idle wait: the poll tick, longer after failing steps."""
        poll = self.config.watch.poll_seconds
        return min(MAX_BACKOFF_SECONDS, poll * 2.0**self._failures) if self._failures else poll

    def _feed_watchdog(self, worker: Worker) -> None:
        """Ping systemd only while the worker is idle or within its heartbeat deadline."""
        if not worker.heartbeat.alive():
            if not self._stall_logged:
                self._stall_logged = True
                self.log.error(
                    Event.WORKER_STALLED,
                    stall_seconds=self.config.worker.stall_seconds,
                    hint="systemd's watchdog will restart the daemon",
                )
            return
        self._stall_logged = False
        self.notifier.watchdog()
        self._guard("status", lambda _now: self.notifier.status(self._status_line()), 0.0, None)

    def _report_waiting_retries(self) -> None:
        """``run --once`` ends before a scheduled retry: say so rather than look done."""
        assert self.store is not None
        waiting = self.store.unfinished_count([])
        if waiting:
            self.log.warning(
                Event.BATCH_RETRY_SCHEDULED,
                failed=waiting,
                hint="run again after the retry time, or `inboxd retry` to re-queue now",
            )

    def stop(self) -> None:
        """Stop the worker at its next chunk boundary (or leave it behind if it is
        blocked past ``[worker] stop_seconds``), stop watching, close, unlock."""
        if self.worker is not None:
            if self.worker.stop(self.config.worker.stop_seconds):
                self.worker.ctx.progress.idle()  # stopped: it is working on nothing
                self.worker.ctx.store.close()
            else:
                # A call in flight (a hung API) is abandoned with its connection:
                # everything it had done is in SQLite, and a remote job was recorded
                # before it was submitted.
                self.worker_abandoned = True
                self.log.warning(Event.WORKER_ABANDONED, waited_s=self.config.worker.stop_seconds)
        if self.watcher is not None:
            self.watcher.stop()
        if self.search_server is not None:
            self.search_server.stop()
        if self.store is not None:
            workable = list(self._stages or ())
            unfinished = self.store.unfinished_count(workable)
            self.store.close()
            self.log.info(Event.DAEMON_STOPPED, root=str(self.config.root), unfinished=unfinished)
        self._lock.release()

    def run_counts(self, since: float) -> dict[str, tuple[int, int]]:
        """Batches by state -> (batches, valid pairs) over those still moving and those
        that came to rest at or after ``since``: what a run did (``run --once``)."""
        if self.store is None:
            raise RuntimeError("Service.start() must run first")
        resting = [state for state in BatchState if state not in (self._stages or {})]
        return self.store.batch_totals(since, resting)

    # -- helpers -----------------------------------------------------------------------

    def _started(self) -> Pipeline:
        if self.pipeline is None:
            raise RuntimeError("Service.start() must run first")
        return self.pipeline

    def worker_services(self) -> Services:
        """The services the worker refines with (its store, index, hooks)."""
        return self._worker().ctx

    def _worker(self) -> Worker:
        if self.worker is None:
            raise RuntimeError("Service.start() must run first")
        return self.worker

    def _drain_events(self, now: float) -> None:
        if self.watcher is None:
            return
        pipeline = self._started()
        for sighting in self.watcher.drain():
            if sighting.rescan:
                pipeline.rescan(now)
            else:
                pipeline.observe(sighting.path, now, writing=sighting.writing)

    def _reload(self) -> None:
        """SIGHUP: all or nothing. A bad config is logged and the running one kept; a
        changed one stops the daemon for a re-exec (``reexec_requested``), so every
        service, hook and logger is built again from it."""
        self.reload_requested = False
        if self._reload_config is None:
            return
        try:
            fresh = self._reload_config()
        except ConfigError as exc:
            self.log.error(Event.CONFIG_RELOADED, ok=False, error=str(exc))
            return
        changed = changed_keys(self.config, fresh)
        if not changed:
            self.log.info(Event.CONFIG_RELOADED, ok=True, changed=[], rebuilt="nothing")
            return
        self.log.info(
            Event.CONFIG_RELOADED, ok=True, changed=changed, rebuilt="everything (re-exec)"
        )
        self.notifier.reloading()
        self.reexec_requested = True

    def _status_line(self) -> str:
        if self.store is None:
            return "starting"
        pairs = pair_count(self.store.db)
        workable = list(self._stages or ())
        return f"{pairs} pairs, {self.store.unfinished_count(workable)} batches in progress"
