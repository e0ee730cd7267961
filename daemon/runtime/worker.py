"""The worker: the daemon's long work, on its own thread with its own DB connection.

Embedding (in chunks), de-duplication, scoring, indexing, the corpus run and every
Gemini call and poll happen here, one bounded step at a time, so the supervisor
(signals, intake, the search socket, systemd notify) never waits for them. Progress is
in SQLite at every step: a step that is interrupted is simply done again. Each step
beats the :class:`~daemon.core.heartbeat.Heartbeat` the supervisor watches; a stop
request ends the work at the next beat. A step that raises is logged with its
traceback and retried after a capped backoff: the worker never dies of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from daemon.core import heartbeat
from daemon.core.heartbeat import Heartbeat, WorkCancelled
from daemon.core.logs import Event
from daemon.core.progress import RunTotals, run_totals
from daemon.core.records import Batch
from daemon.ingest.agent_files import SIGNAL_ALL_COMPLETE
from daemon.runtime.mover import BatchMover
from daemon.services import Services
from daemon.stages import Stage
from daemon.stages.corpus_run import run_corpus
from daemon.stages.indexing import bring_index_in_step
from daemon.states import INTAKE, BatchState
from daemon.store import meta

#: Longest wait after repeated failing steps (a database that stays locked, say).
MAX_BACKOFF_SECONDS = 60.0

#: What the worker is doing to a batch in each state, for `inboxd status` and the bars.
DOING = {
    BatchState.IMPORTED: "embedding",
    BatchState.EMBEDDED: "de-duplicating",
    BatchState.DEDUPLICATED: "scoring",
    BatchState.SCORED: "indexing",
}


class Worker:
    """Moves batches from ``imported`` on, and runs the corpus-level work."""

    def __init__(
        self,
        ctx: Services,
        stages: dict[BatchState, Stage],
        beat: Heartbeat,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ctx = ctx
        self.mover = BatchMover(
            ctx, {s: st for s, st in stages.items() if s not in INTAKE}, before=self._report
        )
        self.heartbeat = beat
        # Progress is measured over the current stretch of work: from the first batch
        # moved after the worker was idle. A batch is done once no stage moves it.
        self._workable = list(stages)
        self._resting = [state for state in BatchState if state not in stages]
        self._busy_since: float | None = None
        #: How far the current stretch has got (a terminal's bars read it).
        self.totals = RunTotals(0, 0, 0, 0)
        self.clock = clock
        self.wake = threading.Event()
        self.failures = 0
        self._thread: threading.Thread | None = None

    @property
    def refines(self) -> bool:
        """Whether this worker has the refinement stages (tests of intake run without)."""
        return BatchState.EMBEDDED in self.mover.stages

    # -- one step ----------------------------------------------------------------------

    def step(self, now: float) -> bool:
        """Move (or make progress on) one batch; with none to move, the idle work and the
        corpus run a signal asked for. True if anything happened."""
        if self.mover.advance_one(now) is not None:
            return True
        self._busy_since = None
        worked = self.corpus_work(now)
        if not worked:
            self.ctx.progress.idle()
        return worked

    def _report(self, batch: Batch, now: float) -> None:
        """Say which batch is being worked on, and how far the current stretch has got."""
        if self._busy_since is None:
            self._busy_since = now
        counts = self.ctx.store.batch_totals(self._busy_since, self._resting)
        self.totals = run_totals(counts, self._workable)
        self.ctx.progress.update(
            f"{DOING.get(batch.state, str(batch.state))} {batch.path}",
            self.totals.batches_done,
            self.totals.batches,
            "batches",
            self.totals.detail,
        )

    def corpus_work(self, now: float) -> bool:
        """On ``ALL_SESSIONS_COMPLETE.txt``: the corpus-wide run, once per signal."""
        # Long-running work owned by other modules (polling a remote batch job, say)
        # gets a turn whenever no batch is waiting; each returns True if it did work.
        ticked = [self._guarded(tick, now, "idle work") for tick in self.ctx.hooks.idle_work]
        if self.refines:
            ticked.append(self._guarded(self._index_in_step, now, "index sync"))
        signals = self.ctx.store.unhandled_signals(SIGNAL_ALL_COMPLETE) if self.refines else []
        if not signals:
            return any(ticked)
        # Handled even when the run fails (retrying it every tick would spin; `inboxd
        # refine` runs it by hand), but not when it was cancelled: a stopped run is done
        # again after the restart.
        self._guarded(partial(run_corpus, self.ctx), now, "corpus run")
        for signal in signals:
            self.ctx.store.mark_signal_handled(signal["id"], now)
        return True

    def _index_in_step(self, now: float) -> bool:
        """Sync the index when the intake marked it stale (a rejected new version)."""
        store = self.ctx.store
        marked = meta.value(store.db, meta.INDEX_STALE)
        if marked is None:
            return False
        bring_index_in_step(self.ctx)
        with store.transaction() as db:  # a mark made meanwhile stays for the next turn
            meta.delete(db, meta.INDEX_STALE, if_value=marked)
        return True

    def _guarded(self, work: Callable[[float], Any], now: float, what: str) -> bool:
        """Run corpus-level ``work``; an error is logged, never the worker's end."""
        try:
            return bool(work(now))
        except Exception as exc:
            self.ctx.log.exception(Event.CORPUS_WORK_FAILED, work=what, error=repr(exc))
            return False

    def idle(self, now: float) -> bool:
        """No batch to move now and no corpus run asked for."""
        if not self.mover.idle(now):
            return False
        return not (self.refines and self.ctx.store.unhandled_signals(SIGNAL_ALL_COMPLETE))

    # -- the thread --------------------------------------------------------------------

    def start(self) -> None:
        """Run :meth:`loop` on a daemon thread (abandoned, not joined, if it hangs)."""
        self._thread = threading.Thread(target=self.loop, name="inboxd-worker", daemon=True)
        self._thread.start()

    def loop(self) -> None:
        """Step until stopped; wait for work (or a wake-up) when there is none."""
        heartbeat.bind(self.heartbeat)
        self.ctx.log.info(Event.WORKER_STARTED)
        poll = self.ctx.config.watch.poll_seconds
        while not self.heartbeat.stop.is_set():
            wait = self.run_step(poll)
            if wait:
                self.heartbeat.idle = True
                self.wake.wait(wait)
                self.wake.clear()
        self.ctx.log.info(Event.WORKER_STOPPED)

    def run_step(self, poll: float) -> float:
        """One guarded step; returns how long to wait before the next (0: go on)."""
        try:
            self.heartbeat.idle = False
            self.heartbeat.beat()
            busy = self.step(self.clock())
        except WorkCancelled:
            return 0.0
        except Exception as exc:
            self.failures += 1
            delay = min(MAX_BACKOFF_SECONDS, poll * 2.0**self.failures)
            self.ctx.log.exception(
                Event.LOOP_STEP_FAILED,
                loop="worker",
                error=repr(exc),
                failures=self.failures,
                retry_in_s=round(delay, 2),
            )
            return delay
        self.failures = 0
        return 0.0 if busy else poll

    def stop(self, timeout: float) -> bool:
        """Ask the worker to stop at its next chunk boundary; True if it stopped within
        ``timeout`` (else it is left behind, still blocked, and dies with the process)."""
        self.heartbeat.stop.set()
        self.wake.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
