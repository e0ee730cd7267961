"""The watchdog observer. Its handler does no work: it only puts paths on a queue that
the main loop drains, because watchdog runs handlers serially on its own thread."""

from __future__ import annotations

import queue
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirMovedEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer


@dataclass(frozen=True)
class Sighting:
    """A path the file system told us about; ``writing`` as for SettleTracker.observe."""

    path: Path
    writing: bool | None
    rescan: bool = False  # a whole folder moved in: rescan instead of guessing


class _Enqueue(FileSystemEventHandler):
    def __init__(self, sightings: queue.SimpleQueue[Sighting]) -> None:
        self.sightings = sightings

    def on_any_event(self, event: FileSystemEvent) -> None:
        put = self.sightings.put
        if isinstance(event, DirMovedEvent):
            put(Sighting(Path(str(event.dest_path)), None, rescan=True))
        elif isinstance(event, FileMovedEvent):
            put(Sighting(Path(str(event.dest_path)), False))  # moved into place: complete
        elif isinstance(event, FileCreatedEvent):
            # Not necessarily being written: a file moved in from outside the watched
            # tree, a link or a file in a new folder arrives as a create with no close.
            put(Sighting(Path(str(event.src_path)), None))
        elif isinstance(event, FileModifiedEvent):
            put(Sighting(Path(str(event.src_path)), True))
        elif isinstance(event, FileClosedEvent):
            put(Sighting(Path(str(event.src_path)), False))
        elif isinstance(event, FileClosedNoWriteEvent):
            return  # our own reads close files too


class FolderWatcher:
    """Watches ``inbox/`` and ``outbox/`` recursively; sightings pile up in a queue."""

    def __init__(self, folders: list[Path]) -> None:
        self.sightings: queue.SimpleQueue[Sighting] = queue.SimpleQueue()
        self._observer = Observer()
        handler = _Enqueue(self.sightings)
        for folder in folders:
            self._observer.schedule(handler, str(folder), recursive=True)

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)

    def is_alive(self) -> bool:
        return bool(self._observer.is_alive())

    def drain(self) -> list[Sighting]:
        """Everything sighted since the last drain."""
        found: list[Sighting] = []
        while True:
            try:
                found.append(self.sightings.get_nowait())
            except queue.Empty:
                return found
