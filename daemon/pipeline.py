"""One iteration of the daemon's work, with time passed in: take in settled files,
then move one batch one state on. The service loop and ``run --once`` both call it."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from daemon.agent_files import SIGNAL_ALL_COMPLETE, parse_status
from daemon.errors import InputError, InvalidTransitionError, PermanentError, TransientError
from daemon.layout import FileKind, classify, open_regular, walk
from daemon.logs import Event
from daemon.records import Batch
from daemon.settle import SettleTracker
from daemon.stages import Stage, StageContext
from daemon.states import BatchState
from daemon.store import files
from daemon.store.files import TakenFile

#: The states before a batch's pairs are in the corpus; batches in them go first.
_INGEST = frozenset({BatchState.DETECTED, BatchState.SETTLED, BatchState.VALIDATED})


class _Snapshot(NamedTuple):
    data: bytes  # at most the size limit (plus one byte, to tell it was passed)
    sha256: str  # of the whole file
    size: int
    mtime_ns: int | None  # None: the file changed while it was read

    @property
    def taken(self) -> TakenFile | None:
        """What to remember of the file (None: it changed while read; nothing is)."""
        if self.mtime_ns is None:
            return None
        return TakenFile(self.size, self.mtime_ns, self.sha256)


class Pipeline:
    """Settled files in, batches moved along the state machine."""

    def __init__(self, ctx: StageContext, stages: dict[BatchState, Stage]) -> None:
        self.ctx = ctx
        self.stages = stages
        self.tracker = SettleTracker(ctx.config.watch.settle_seconds)
        self._refused: set[tuple[Path, int]] = set()

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
            agent_file = classify(root, path)
            known = taken.get(agent_file.relpath) if agent_file else None
            if known is not None and self._unchanged(path, known):
                unchanged += 1
                continue
            self.observe(path, now)
        self.ctx.log.debug(Event.SCAN_COMPLETED, files=len(paths), unchanged=unchanged)
        return len(paths)

    def _unchanged(self, path: Path, known: TakenFile) -> bool:
        if self.tracker.is_pending(path):
            return False  # seen changing since: it settles like any other
        try:
            st = path.stat()
            if (st.st_size, st.st_mtime_ns) != (known.size, known.mtime_ns):
                return False
            # Same size and mtime can still hide new bytes (a copy that kept the old
            # mtime): the hash decides. Reading is what taking the file would cost anyway.
            return self._read(path).taken == known
        except (InputError, OSError):
            return False  # refused or gone: the ordinary path reports it

    def take_settled(self, now: float) -> int:
        """Hand every complete file to its handler; returns how many were new."""
        taken = 0
        for path in self.tracker.due(now):
            agent_file = classify(self.ctx.config.root, path)
            if agent_file is None:
                continue
            try:
                snap = self._read(path)
            except InputError as exc:
                self._refuse(path, exc)
                continue
            except OSError:
                continue  # vanished or unreadable for now: the next scan sees it again
            taken += self._take(agent_file.kind, agent_file.agent, agent_file.relpath, snap, now)
            if snap.taken is not None:
                with self.ctx.store.transaction() as db:
                    files.remember_taken(db, agent_file.relpath, snap.taken, now)
        return taken

    def _read(self, path: Path) -> _Snapshot:
        fd = open_regular(self.ctx.config.root, path)
        with os.fdopen(fd, "rb") as handle:
            # Hash the whole file but keep at most the limit in memory.
            digest, size, kept = hashlib.sha256(), 0, bytearray()
            limit = self.ctx.config.limits.max_file_bytes
            before = os.fstat(handle.fileno())
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                if len(kept) <= limit:
                    kept += chunk
            after = os.fstat(handle.fileno())
            steady = (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)
            mtime_ns = after.st_mtime_ns if steady and after.st_size == size else None
            return _Snapshot(bytes(kept[: limit + 1]), digest.hexdigest(), size, mtime_ns)

    def _take(self, kind: FileKind, agent: str, relpath: str, snap: _Snapshot, now: float) -> int:
        store, log = self.ctx.store, self.ctx.log
        data, sha256, size = snap.data, snap.sha256, snap.size
        if kind is FileKind.QA:
            latest = store.latest_batch_for_path(relpath)
            if latest is not None and latest.sha256 == sha256:
                return 0
            batch, superseded = store.create_batch(
                agent=agent, path=relpath, sha256=sha256, size=size, now=now
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
            progress = parse_status(text)
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
        handler = self.ctx.services.get(f"on_{kind}")
        return int(handler(agent, relpath, text, now)) if handler else 0

    def _refuse(self, path: Path, exc: InputError) -> None:
        key = (path, hash(exc.reason))
        if key not in self._refused:  # once per path and reason, not every rescan
            self._refused.add(key)
            self.ctx.log.warning(Event.FILE_REFUSED, path=str(path), reason=exc.reason)

    # -- moving batches ----------------------------------------------------------------

    def advance_one(self, now: float) -> Batch | None:
        """Move one batch one state on: the oldest still being ingested, else the oldest
        workable one; None when there is nothing to do."""
        store, log = self.ctx.store, self.ctx.log
        workable = list(self.stages)
        # Ingest first: its steps take milliseconds, so a new file's pairs reach the
        # corpus without queueing behind the embedding of every earlier batch.
        ingest = [state for state in workable if state in _INGEST]
        batch = (store.next_workable(now, ingest) if ingest else None) or store.next_workable(
            now, workable
        )
        if batch is None:
            return None
        if batch.state is BatchState.FAILED:
            batch = store.resume(batch, now=now)
        stage = self.stages.get(batch.state)
        if stage is None:
            return None
        started = time.monotonic()
        try:
            moved = stage(batch, self.ctx, now)
        except TransientError as exc:
            return self._fail(batch, str(exc), now)
        except InvalidTransitionError:
            raise
        except PermanentError as exc:
            return self._fail(batch, str(exc), now, park=True)
        except Exception as exc:
            log.exception(
                Event.BATCH_TRANSITION,
                batch=batch.id,
                path=batch.path,
                state=str(batch.state),
                error=repr(exc),
            )
            return self._fail(batch, f"unexpected error: {exc!r}", now)
        log.info(
            Event.BATCH_TRANSITION,
            batch=moved.id,
            path=moved.path,
            from_state=str(batch.state),
            state=str(moved.state),
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            **self._counts(moved),
        )
        return moved

    def _counts(self, batch: Batch) -> dict[str, int]:
        if batch.state not in (BatchState.VALIDATED, BatchState.IMPORTED):
            return {}
        row = self.ctx.store.db.table("batches").get(batch.id)
        keys = (
            ("pairs_valid", "pairs_invalid")
            if batch.state is BatchState.VALIDATED
            else ("pairs_valid", "pairs_new")
        )
        return {key: row[key] for key in keys if row[key] is not None}

    def _fail(self, batch: Batch, error: str, now: float, park: bool = False) -> Batch:
        retry = self.ctx.config.retry
        failed = self.ctx.store.fail(
            batch,
            error,
            now=now,
            max_attempts=1 if park else retry.max_attempts,
            base_seconds=retry.base_seconds,
            max_seconds=retry.max_seconds,
        )
        event = (
            Event.BATCH_PARKED if failed.next_attempt_at is None else (Event.BATCH_RETRY_SCHEDULED)
        )
        self.ctx.log.warning(
            event,
            batch=batch.id,
            path=batch.path,
            state=str(batch.state),
            error=error,
            attempts=failed.attempts,
            retry_in_s=None
            if failed.next_attempt_at is None
            else round(failed.next_attempt_at - now, 1),
        )
        return failed

    def step(self, now: float) -> bool:
        """Take in complete files, then move one batch (or, with no batch to move, run
        the corpus-level work a signal asked for); True if anything happened."""
        took = self.take_settled(now)
        moved = self.advance_one(now)
        if moved is None and not took:
            return self.corpus_work(now)
        return True

    def corpus_work(self, now: float) -> bool:
        """On ``ALL_SESSIONS_COMPLETE.txt``: the corpus-wide refinement, once per signal."""
        # Long-running work owned by other modules (polling a remote batch job, say)
        # gets a turn whenever no batch is waiting; each returns True if it did work.
        ticked = [
            self._guarded(tick, now, "idle work") for tick in self.ctx.services.get("idle_work", [])
        ]
        run = self.ctx.services.get("refine_corpus")
        signals = self.ctx.store.unhandled_signals(SIGNAL_ALL_COMPLETE)
        if run is None or not signals:
            return any(ticked)
        # Handled even when the run fails: retrying it every tick would spin, and a
        # restart would fail the same way; `inboxd refine` runs it again by hand.
        self._guarded(run, now, "corpus run")
        for signal in signals:
            self.ctx.store.mark_signal_handled(signal["id"], now)
        return True

    def _guarded(self, work: Callable[[float], Any], now: float, what: str) -> bool:
        """Run corpus-level ``work``; an error is logged, never the daemon's end."""
        try:
            return bool(work(now))
        except Exception as exc:
            self.ctx.log.exception(Event.CORPUS_WORK_FAILED, work=what, error=repr(exc))
            return False

    def idle(self) -> bool:
        """Nothing pending in the tracker and no batch a stage can move now."""
        return (
            len(self.tracker) == 0
            and self.ctx.store.next_workable(time.time(), list(self.stages)) is None
        )
