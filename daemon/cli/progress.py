"""The progress display of a command on a terminal: rich bars on stderr while long work
runs (``run --once``, ``refine``, ``export``, ``eval``), gone when it ends, and nothing
at all when stderr is not a terminal (pipes, files, journald, tests)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from daemon.core.progress import Listener, Update
from daemon.states import BatchState


class TerminalProgress:
    """Rows of progress bars, drawn only when ``enabled`` (default: stderr is a terminal).

    Use as a context manager; ``show`` creates or moves a row, ``listeners`` is what to
    hand to a ``daemon.progress.Progress`` (empty when nothing is drawn). While the bars
    are up, anything printed to stdout or stderr (log lines) appears above them.
    """

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bars: Progress | None = None
        self._rows: dict[str, TaskID] = {}

    def __enter__(self) -> TerminalProgress:
        if self.enabled:
            self._bars = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,  # the answer, not the bars, is what stays on screen
            )
            self._bars.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    def show(self, row: str, description: str, done: int, total: int | None) -> None:
        """Set row ``row`` to ``done`` of ``total`` (None: a spinner, no bar yet)."""
        if self._bars is None:
            return
        if row not in self._rows:
            self._rows[row] = self._bars.add_task(description, total=total)
        self._bars.update(self._rows[row], description=description, completed=done, total=total)

    def task(self, update: Update) -> None:
        """A listener: the current task on the row ``task``."""
        self.show("task", update.task, update.done, update.total)

    @property
    def listeners(self) -> list[Listener]:
        return [self.task] if self.enabled else []


def describe_run(counts: Mapping[str, tuple[int, int]]) -> str:
    """One line for a person after ``run --once``, from ``Store.batch_totals``: the
    batches by state and the pairs of those indexed."""
    if not counts:
        return "nothing new to process"
    order = [str(state) for state in BatchState]
    states = ", ".join(f"{counts[state][0]} {state}" for state in sorted(counts, key=order.index))
    files = sum(n for n, _ in counts.values())
    pairs = counts.get(str(BatchState.INDEXED), (0, 0))[1]
    return (
        f"{files} file version(s) processed: {states}; {pairs:,} pairs indexed"
        " (details: inboxd status)"
    )
