"""Taking in one settled file, totally: whatever goes wrong while reading, classifying,
parsing or recording it is that file's problem, never the daemon's.

A file that cannot be taken is *refused*: the reason (with its position where there is
one) is logged once, kept in ``refused_files`` for ``inboxd status``, and written to the
agent's feedback folder; the next scan looks at the file again, so a fixed file is
taken and its refusal dropped. Q&A content is judged later, by the batch stages
(*rejected*); what is refused here is what never becomes a batch: links out of the root,
FIFOs and other non-files, names that are not UTF-8, a ``status.txt`` or assignment
whose numbers are out of range, and any unexpected error.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from daemon.core.errors import InputError, TransientError
from daemon.core.logs import Event
from daemon.core.textid import is_decodable, printable
from daemon.ingest import feedback
from daemon.ingest.layout import AgentFile, FileKind, classify, open_regular
from daemon.services import Services
from daemon.store import files
from daemon.store import intake as refusals_db
from daemon.store.files import TakenFile


class Snapshot(NamedTuple):
    """The bytes of a file as intake read them."""

    data: bytes  # at most the size limit (plus one byte, to tell it was passed)
    sha256: str  # of the whole file
    size: int
    mtime_ns: int | None = None  # None: the file changed while it was read

    @property
    def taken(self) -> TakenFile | None:
        """What to remember of the file (None: it changed while read; nothing is)."""
        if self.mtime_ns is None:
            return None
        return TakenFile(self.size, self.mtime_ns, self.sha256)


#: Records a snapshot of a file of a kind (agent, relative path, bytes, time); returns
#: 1 if it was new, else 0.
Recorder = Callable[[FileKind, str, str, Snapshot, float], int]

_Stamp = tuple[int, int]  # (size, mtime_ns)


class Intake:
    """Reads settled files and hands them to a recorder, refusing what fails."""

    def __init__(self, ctx: Services) -> None:
        self.ctx = ctx
        # Over the size limit and unchanged since taken: not hashed again on each scan.
        self._oversized: dict[Path, _Stamp] = {}
        # path -> (reason, agent) of the files refused now, as the DB has them.
        self._refused: dict[str, tuple[str, str]] = {
            row["path"]: (_full_reason(row["reason"], row["position"]), row["agent"])
            for row in refusals_db.refusals(ctx.store.db)
        }
        # path -> the transient error last logged for it (until it is taken or refused).
        self._deferred: dict[str, str] = {}

    def take(self, path: Path, now: float, record: Recorder) -> int:
        """Read ``path`` and record it; 0 if it was not new, refused or deferred."""
        found = classify(self.ctx.config.root, path)
        if found is None:
            return 0
        shown = printable(found.relpath)
        try:
            if not is_decodable(found.relpath):
                raise InputError(
                    shown,
                    "refused: the name is not valid UTF-8 (shown with \\xNN for each byte"
                    " that is not); rename the file",
                    "file name",
                )
            read = self._read(path)
            if read is None:
                return 0
            snap, stamp = read
            taken = record(found.kind, found.agent, found.relpath, snap, now)
            if snap.taken is not None:
                with self.ctx.store.transaction() as db:
                    files.remember_taken(db, found.relpath, snap.taken, now)
        except FileNotFoundError:
            return 0  # gone for now (being replaced?): the next scan sees it again
        except TransientError as exc:
            # Not the file's fault (the database is busy, say): the next scan retries.
            self._defer(shown, str(exc))
            return 0
        except InputError as exc:
            self.refuse(found, exc, now)
            return 0
        except Exception as exc:  # noqa: BLE001 - one file's problem, whatever it is
            self.refuse(found, InputError(shown, f"unexpected error: {exc!r}"), now, exc)
            return 0
        if stamp is not None:
            self._oversized[path] = stamp
        self._deferred.pop(shown, None)
        self._accepted(found)
        return taken

    def _read(self, path: Path) -> tuple[Snapshot, _Stamp | None] | None:
        """The file's snapshot, and its stamp if over the limit; None if it is over the
        limit and unchanged since it was taken."""
        limit = self.ctx.config.limits.max_file_bytes
        fd = open_regular(self.ctx.config.root, path)
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            stamp = (st.st_size, st.st_mtime_ns) if st.st_size > limit else None
            if stamp is not None and self._oversized.get(path) == stamp:
                return None
            # Hash the whole file but keep at most the limit in memory.
            digest, size, kept = hashlib.sha256(), 0, bytearray()
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                if len(kept) <= limit:
                    kept += chunk
            after = os.fstat(handle.fileno())
            steady = (st.st_size, st.st_mtime_ns) == (after.st_size, after.st_mtime_ns)
            mtime_ns = after.st_mtime_ns if steady and after.st_size == size else None
            snap = Snapshot(bytes(kept[: limit + 1]), digest.hexdigest(), size, mtime_ns)
            return snap, stamp

    def unchanged(self, path: Path, known: TakenFile) -> bool:
        """Whether ``path`` is still what was taken (size, mtime and, to be sure, its
        sha256): then it has nothing new and need not wait a settle window."""
        try:
            st = path.stat()
            if (st.st_size, st.st_mtime_ns) != (known.size, known.mtime_ns):
                return False
            # Same size and mtime can still hide new bytes (a copy that kept the old
            # mtime): the hash decides. Reading is what taking the file would cost anyway.
            read = self._read(path)
        except (InputError, OSError):
            return False  # refused or gone: the ordinary path reports it
        return read is not None and read[0].taken == known

    # -- refusals ------------------------------------------------------------------------

    def refuse(
        self, found: AgentFile, error: InputError, now: float, cause: Exception | None = None
    ) -> None:
        """Refuse a file: log once, record for ``status``, tell the agent. Never raises."""
        path = printable(found.relpath)
        self._deferred.pop(path, None)
        reason = _full_reason(error.reason, error.position)
        if self._refused.get(path, (None, None))[0] == reason:
            return
        log = self.ctx.log.exception if cause is not None else self.ctx.log.warning
        log(
            Event.FILE_REFUSED,
            path=path,
            agent=found.agent,
            reason=error.reason,
            position=error.position,
        )
        try:
            with self.ctx.store.transaction() as db:
                refusals_db.save_refusal(
                    db,
                    path=path,
                    agent=printable(found.agent),
                    reason=error.reason,
                    position=error.position,
                    now=now,
                )
        except Exception as exc:  # noqa: BLE001 - logged; the next scan tries again
            self.ctx.log.error(Event.FILE_REFUSED, path=path, not_recorded=repr(exc))
            return
        self._refused[path] = (reason, found.agent)
        if not is_decodable(found.agent):
            return  # no folder to write to: the agent's own name is not UTF-8
        try:
            feedback.write_refusal(
                self.ctx.config.inbox_dir, agent=found.agent, relpath=path, reason=reason
            )
        except OSError as exc:
            self.ctx.log.error(Event.FILE_REFUSED, path=path, feedback_not_written=repr(exc))

    def _accepted(self, found: AgentFile) -> None:
        """A file was taken: a refusal it had no longer applies."""
        if found.relpath in self._refused:
            self.forget([found.relpath])

    def forget(self, paths: Iterable[str]) -> None:
        """Drop the refusals of ``paths`` and their feedback reports."""
        gone = [path for path in paths if path in self._refused]
        if not gone:
            return
        try:
            with self.ctx.store.transaction() as db:
                refusals_db.drop_refusals(db, gone)
        except TransientError:
            return  # kept for now; the next call drops them
        for path in gone:
            _, agent = self._refused.pop(path)
            if is_decodable(agent):
                feedback.remove_refusal(self.ctx.config.inbox_dir, agent=agent, relpath=path)

    def prune(self, present: Iterable[Path]) -> None:
        """After a full scan: forget what is kept about files that are no longer there
        (their refusals, their size stamps, their deferrals)."""
        root = self.ctx.config.root
        paths = set(present)
        here = {printable(found.relpath) for p in paths if (found := classify(root, p))}
        self.forget([path for path in self._refused if path not in here])
        self._oversized = {p: s for p, s in self._oversized.items() if p in paths}
        self._deferred = {p: e for p, e in self._deferred.items() if p in here}

    def _defer(self, path: str, error: str) -> None:
        if self._deferred.get(path) != error:  # once, not on every scan
            self._deferred[path] = error
            self.ctx.log.warning(Event.FILE_DEFERRED, path=path, error=error)

    @property
    def refused(self) -> dict[str, str]:
        """Refused paths and their reasons."""
        return {path: reason for path, (reason, _) in self._refused.items()}


def _full_reason(reason: str, position: str | None) -> str:
    return f"{reason} (at {position})" if position else reason
