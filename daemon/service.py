"""The daemon's lifecycle in one object: start (lock, migrate, reconcile), run (one step
at a time until a stop flag), stop (drain, close, unlock). Signal handlers only set flags."""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from daemon import __version__
from daemon.config import Config
from daemon.errors import AlreadyRunningError, ConfigError
from daemon.logs import Event, get_logger
from daemon.notify import SystemdNotifier
from daemon.pipeline import Pipeline
from daemon.search_server import SearchServer
from daemon.stages import Stage, StageContext, default_stages
from daemon.states import BatchState
from daemon.store import Store
from daemon.watcher import FolderWatcher


class RootLock:
    """One daemon per root: an exclusive ``flock`` on ``state/inboxd.lock``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunningError(
                f"another inboxd (pid {holder}) is already running on {self.path.parent.parent};"
                " stop it first (one daemon per root)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


class Service:
    """A running inboxd on one root."""

    def __init__(
        self,
        config: Config,
        *,
        stages: dict[BatchState, Stage] | None = None,
        reload_config: Callable[[], Config] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.log = get_logger()
        self.clock = clock
        self.stop_requested = threading.Event()
        self.reload_requested = False
        self._reload_config = reload_config
        self._stages = stages
        self._lock = RootLock(config.lock_path)
        self.notifier = SystemdNotifier.from_env()
        self.store: Store | None = None
        self.pipeline: Pipeline | None = None
        self.watcher: FolderWatcher | None = None
        self.search_server: SearchServer | None = None
        self._warm_up: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, *, watch: bool = True) -> Pipeline:
        """Lock the root, migrate the DB, reconcile the folders, start watching."""
        cfg = self.config
        self._lock.acquire()
        for folder in (cfg.inbox_dir, cfg.outbox_dir, cfg.state_dir, cfg.archive_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.store = Store(cfg.db_path)
        self.store.migrate()
        ctx = StageContext(config=cfg, store=self.store, log=self.log)
        from daemon.wiring import wire  # the later stages' providers

        stages = self._stages if self._stages is not None else default_stages()
        stages = wire(ctx, stages)
        self.pipeline = Pipeline(ctx, stages)
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
            self._serve_search(ctx)
        self.pipeline.rescan(self.clock())
        return self.pipeline

    def _serve_search(self, ctx: StageContext) -> None:
        """Answer ``inboxd search`` from this process's index and loaded model."""
        if "index" not in ctx.services or not self.config.search.serve:
            return
        self.search_server = SearchServer(
            self.config.state_dir,
            self.config.db_path,
            ctx.services["index"],
            ctx.services["embedder"],
            ctx.services["catalog"],
            ctx.services["scorer"].name,
        )
        self.search_server.start()
        if self.config.embeddings.provider == "local":
            # Load the model now, beside the loop, so the first query (and the first
            # file) does not wait for it (or for its export, on a root that has none);
            # a paid embedder is not called for this.
            embedder = ctx.services["embedder"]
            self._warm_up = threading.Thread(
                target=embedder.embed_query, args=("warm-up",), name="model-warm-up", daemon=True
            )
            self._warm_up.start()

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
        """Serve until a stop is requested."""
        pipeline = self._started()
        cfg = self.config
        next_rescan = self.clock() + cfg.watch.rescan_seconds
        ping_every = self.notifier.watchdog_interval()
        next_ping = 0.0
        self.notifier.ready(status=self._status_line())
        self.log.info(Event.DAEMON_READY, root=str(cfg.root))
        while not self.stop_requested.is_set():
            now = self.clock()
            if self.reload_requested:
                self._reload()
            self._drain_events(now)
            if now >= next_rescan:
                pipeline.rescan(now)
                next_rescan = now + self.config.watch.rescan_seconds
            busy = pipeline.step(now)
            if ping_every is not None and time.monotonic() >= next_ping:
                self.notifier.watchdog()
                self.notifier.status(self._status_line())
                next_ping = time.monotonic() + ping_every
            if not busy:
                self.stop_requested.wait(self.config.watch.poll_seconds)
        if self._warm_up is not None:
            # Loading takes well under a second: let it end, so that its model.loaded
            # is not logged among the stop events. An export still running is
            # abandoned (it writes into a staging folder; nothing half-done is used).
            self._warm_up.join(timeout=5)
        self.notifier.stopping()
        self.log.info(Event.DAEMON_STOPPING, root=str(cfg.root))

    def run_once(self) -> None:
        """Process everything present now, then return (for cron and tests)."""
        pipeline = self._started()
        while not self.stop_requested.is_set():
            busy = pipeline.step(self.clock())
            if not busy:
                if pipeline.idle():
                    self._report_waiting_retries()
                    return
                self.stop_requested.wait(min(0.05, self.config.watch.poll_seconds))

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
        """Stop watching, close the DB, release the lock."""
        if self.watcher is not None:
            self.watcher.stop()
        if self.search_server is not None:
            self.search_server.stop()
        hooks: list[Callable[[], Any]] = []
        if self.pipeline is not None:
            hooks = self.pipeline.ctx.services.get("on_stop", [])
        for hook in hooks:
            hook()
        if self.store is not None:
            workable = list(self.pipeline.stages) if self.pipeline else []
            unfinished = self.store.unfinished_count(workable)
            self.store.close()
            self.log.info(Event.DAEMON_STOPPED, root=str(self.config.root), unfinished=unfinished)
        self._lock.release()

    # -- helpers -----------------------------------------------------------------------

    def _started(self) -> Pipeline:
        if self.pipeline is None:
            raise RuntimeError("Service.start() must run first")
        return self.pipeline

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
        self.reload_requested = False
        if self._reload_config is None:
            return
        self.notifier.reloading()
        try:
            fresh = self._reload_config()
        except ConfigError as exc:
            self.log.error(Event.CONFIG_RELOADED, ok=False, error=str(exc))
        else:
            self.config = fresh
            pipeline = self._started()
            pipeline.ctx.config = fresh
            pipeline.tracker.settle_seconds = fresh.watch.settle_seconds
            self.log.info(Event.CONFIG_RELOADED, ok=True)
        self.notifier.ready(status=self._status_line())

    def _status_line(self) -> str:
        if self.store is None:
            return "starting"
        pairs = self.store.db.execute("SELECT count(*) FROM pairs").fetchone()[0]
        workable = list(self.pipeline.stages) if self.pipeline else []
        return f"{pairs} pairs, {self.store.unfinished_count(workable)} batches in progress"
