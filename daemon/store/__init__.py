"""The one package that touches SQLite. ``Store`` is one root's database: the
connection (``base``), the state machine (``machine``), batch queries (``batches``),
signals (``signals``) and the worker's progress (``progress``); the other modules hold
named queries as functions over a ``Connection``. WAL on open; the daemon is the one
writer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from daemon.store.base import Connection, DatabaseError, StoreBase, translate
from daemon.store.machine import Effects, OnSupersede, StateMachine
from daemon.store.progress import TaskProgressQueries
from daemon.store.signals import SignalQueries

__all__ = [
    "Connection",
    "DatabaseError",
    "Effects",
    "OnSupersede",
    "Store",
    "StoreBase",
    "read_through",
    "translate",
    "write_through",
]


class Store(StateMachine, SignalQueries, TaskProgressQueries):
    """The SQLite database of one root, with its named queries.

    Threads may share a Store: in the daemon the search thread records what a paid query
    embedding cost through the worker's. So a write transaction holds a lock: a second
    thread's waits for it, never nests in it.
    """


@contextmanager
def write_through(path: Path, store: Store | None = None) -> Iterator[Connection]:
    """A write transaction for a record that must land the moment it happens (a paid
    call, a pair the judge gave up on).

    On ``store`` when it is writable: in the daemon that is its one write connection,
    under its lock, whichever thread records. Otherwise (no store, or a read-only one:
    ``ask``, ``search`` or ``eval`` beside the daemon) on a short-lived write connection
    of this process, because money spent must be recorded even by a reader.
    """
    if store is not None and not store.readonly:
        with store.transaction() as db:
            yield db
        return
    own = Store(path)
    try:
        with own.transaction() as db:
            yield db
    finally:
        own.close()


@contextmanager
def read_through(path: Path, store: Store | None = None) -> Iterator[Connection]:
    """``store``'s connection for a read, or a short-lived read-only one of ``path``."""
    if store is not None:
        yield store.db
        return
    own = Store(path, readonly=True)
    try:
        yield own.db
    finally:
        own.close()
