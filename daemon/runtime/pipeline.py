"""The supervisor's share of the work, one step at a time with time passed in: see
files, take in the settled ones, and move new batches through the intake stages to
``imported`` (milliseconds each). Everything after ``imported`` is the worker's
(:mod:`daemon.runtime.worker`)."""

from __future__ import annotations

import time
from pathlib import Path

from daemon.core.logs import Event
from daemon.ingest.agent_files import SIGNAL_ALL_COMPLETE, parse_status
from daemon.ingest.layout import FileKind, classify, walk
from daemon.runtime.intake import Intake, Snapshot
from daemon.runtime.mover import BatchMover
from daemon.runtime.settle_tracker import SettleTracker
from daemon.services import Services
from daemon.stages import Stage
from daemon.states import INTAKE, BatchState
from daemon.store import files


class Pipeline:
    """Settled files in, new batches moved through the intake stages."""

    def __init__(self, ctx: Services, stages: dict[BatchState, Stage]) -> None:
        self.ctx = ctx
        self.stages = {state: stage for state, stage in stages.items() if state in INTAKE}
        self.mover = BatchMover(ctx, self.stages)
        self.tracker = SettleTracker(ctx.config.watch.settle_seconds)
        self.intake = Intake(ctx)

    # -- seeing files ------------------------------------------------------------------

    def observe(self, path: Path, now: float, writing: bool | None = None) -> None:
        """A path was seen (event or scan); it is taken once complete."""
        if classify(self.ctx.config.root, path) is None:
            return
        if self.tracker.observe(path, now, writing=writing):
            self.ctx.log.debug(Event.FILE_DETECTED, path=str(path))

    def rescan(self, now: float) -> int:
        """Reconcile the folders with the DB: every protocol file is looked at again.

        A file whose size, mtime and sha256 are what the DB recorded when it was last
        taken has nothing new, so it does not wait a settle window to be taken again:
        an unchanged root is done at once (``run --once`` on it ends in well under a
        second whatever the window), and any change goes through the window as before.
        """
        root = self.ctx.config.root
        taken = files.taken_files(self.ctx.store.db)
        paths = walk(root)
        unchanged = 0
        for path in paths:
            found = classify(root, path)
            known = taken.get(found.relpath) if found else None
            if (
                known is not None
                and not self.tracker.is_pending(path)
                and self.intake.unchanged(path, known)
            ):
                unchanged += 1
                continue
            self.observe(path, now)
        self.intake.prune(paths)
        self.ctx.log.debug(Event.SCAN_COMPLETED, files=len(paths), unchanged=unchanged)
        return len(paths)

    def take_settled(self, now: float) -> int:
        """Hand every complete file to its handler; returns how many were new. Anything
        one file raises makes that file refused (see daemon.runtime.intake), never stops
        this."""
        return sum(self.intake.take(path, now, self._take) for path in self.tracker.due(now))

    def _take(self, kind: FileKind, agent: str, relpath: str, snap: Snapshot, now: float) -> int:
        store, log = self.ctx.store, self.ctx.log
        data, sha256, size = snap.data, snap.sha256, snap.size
        if kind is FileKind.QA:
            latest = store.latest_batch_for_path(relpath)
            if latest is not None and latest.sha256 == sha256:
                return 0
            batch, superseded = store.create_batch(
                agent=agent,
                path=relpath,
                sha256=sha256,
                size=size,
                now=now,
                on_supersede=self.ctx.rehome_clusters,
            )
            log.info(
                Event.FILE_DETECTED,
                batch=batch.id,
                path=relpath,
                agent=agent,
                size=size,
                sha256=sha256[:12],
                superseded=superseded or None,
            )
            return 1
        text = data.decode("utf-8", errors="replace")
        if kind is FileKind.STATUS:
            progress = parse_status(text, relpath)
            if store.record_progress(agent, {**progress, "path": relpath, "seen_at": now}):
                log.info(
                    Event.PROGRESS_UPDATED,
                    agent=agent,
                    path=relpath,
                    sessions_complete=progress["sessions_complete"],
                    sessions_total=progress["sessions_total"],
                    current_session=progress["current_session"],
                )
                return 1
            return 0
        if kind is FileKind.SIGNAL:
            if store.record_signal(
                kind=SIGNAL_ALL_COMPLETE,
                agent=agent,
                path=relpath,
                sha256=sha256,
                body=text,
                now=now,
            ):
                log.info(
                    Event.SIGNAL_RECEIVED, signal=SIGNAL_ALL_COMPLETE, agent=agent, path=relpath
                )
                return 1
            return 0
        handler = self.ctx.hooks.on_assignment if kind is FileKind.ASSIGNMENT else None
        return int(handler(agent, relpath, text, now)) if handler else 0

    # -- moving new batches --------------------------------------------------------------

    def step(self, now: float) -> bool:
        """Take in complete files, then move one new batch one intake step on; True if
        anything happened."""
        took = self.take_settled(now)
        moved = self.mover.advance_one(now)
        return bool(took) or moved is not None

    def idle(self, now: float | None = None) -> bool:
        """Nothing pending in the tracker and no new batch to move now."""
        return len(self.tracker) == 0 and self.mover.idle(time.time() if now is None else now)
