"""How far long work has got, said once and heard twice: the worker's current task is
saved in SQLite for ``inboxd status`` (a few times a second at most), and handed to
listeners such as the progress bar a command draws on a terminal."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from daemon.core.errors import InboxdError
from daemon.states import BatchState

#: Batches past these states have their texts embedded.
_EMBEDDED = frozenset(
    {BatchState.EMBEDDED, BatchState.DEDUPLICATED, BatchState.SCORED, BatchState.INDEXED}
)
#: Batches whose pairs do not count towards a run's pairs (nothing will embed them).
_DROPPED = frozenset({BatchState.REJECTED, BatchState.SUPERSEDED})


@dataclass(frozen=True)
class Update:
    """One report: ``task`` (for people), ``done`` of ``total`` (None: not known) ``unit``,
    and an optional second measure in ``detail``."""

    task: str
    done: int = 0
    total: int | None = None
    unit: str = ""
    detail: str = ""


Listener = Callable[[Update], None]


class TaskStore(Protocol):
    """Where the current task is saved: ``daemon.store.Store`` (a protocol here, since
    the store is a layer above this one)."""

    def set_task_progress(
        self,
        task: str,
        done: int,
        total: int | None,
        *,
        unit: str = "",
        detail: str = "",
        now: float | None = None,
    ) -> None: ...

    def clear_task_progress(self) -> None: ...


class Progress:
    """Where long work reports how far it is.

    ``store``: also save the current task there (for ``status``): a new task at once,
    further counts of the same task at most every ``every`` seconds.
    ``listeners`` hear every update (a terminal bar redraws at its own pace).
    Without either it costs nothing: the default for library calls.
    """

    def __init__(
        self,
        store: TaskStore | None = None,
        listeners: Sequence[Listener] = (),
        *,
        every: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.listeners = list(listeners)
        self.every = every
        self.clock = clock
        self._pending: Update | None = None
        self._saved_at = float("-inf")
        self._idle = True

    def update(
        self, task: str, done: int = 0, total: int | None = None, unit: str = "", detail: str = ""
    ) -> None:
        """Report the current task and how far it has got."""
        report = Update(task, done, total, unit, detail)
        for listener in self.listeners:
            listener(report)
        # A new task (or a new measure of it) is saved at once: a step can take seconds
        # with no further update; counts within one at most every `every` seconds.
        last = self._pending
        new_task = last is None or (report.task, report.unit) != (last.task, last.unit)
        self._idle = False
        self._pending = report
        if new_task or self.clock() - self._saved_at >= self.every:
            self.flush()

    def steps(self, task: str, names: Sequence[str]) -> Callable[[int], None]:
        """For work done in named steps: returns ``step(i)``, which reports step ``i``."""

        def step(i: int) -> None:
            self.update(f"{task}: {names[i]}", i, len(names), "steps")

        return step

    def flush(self) -> None:
        """Save the latest update now (when the DB is busy: at the next update)."""
        if self.store is not None and self._pending is not None:
            p = self._pending
            try:
                self.store.set_task_progress(
                    p.task, p.done, p.total, unit=p.unit, detail=p.detail, now=time.time()
                )
            except InboxdError:
                return  # progress is for people: a locked DB must not fail the work itself
            self._saved_at = self.clock()

    def idle(self) -> None:
        """Nothing to do any more: the saved task is removed."""
        if self._idle:
            return
        self._idle, self._pending = True, None
        if self.store is not None:
            try:
                self.store.clear_task_progress()
            except InboxdError:
                self._idle = False  # try again the next time the worker goes idle


#: Reports nothing: the default where no one listens.
SILENT = Progress()


@dataclass(frozen=True)
class RunTotals:
    """How far a run has got: batches at rest of all its batches, and pairs embedded of
    all the pairs its valid batches hold."""

    batches_done: int
    batches: int
    pairs_embedded: int
    pairs: int

    @property
    def detail(self) -> str:
        return f"{self.pairs_embedded:,}/{self.pairs:,} pairs embedded"


def run_totals(counts: Mapping[str, tuple[int, int]], workable: Iterable[BatchState]) -> RunTotals:
    """Totals from ``Store.batch_totals`` (state -> (batches, pairs)); a batch is done
    when no stage will move it (``workable`` are the states some stage moves)."""
    moving = {str(state) for state in workable} | {str(BatchState.FAILED)}
    embedded = {str(state) for state in _EMBEDDED}
    dropped = {str(state) for state in _DROPPED}
    return RunTotals(
        batches_done=sum(n for state, (n, _) in counts.items() if state not in moving),
        batches=sum(n for n, _ in counts.values()),
        pairs_embedded=sum(p for state, (_, p) in counts.items() if state in embedded),
        pairs=sum(p for state, (_, p) in counts.items() if state not in dropped),
    )
