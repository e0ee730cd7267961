"""Plain records passed between the stages and the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from daemon.states import BatchState


@dataclass(frozen=True)
class Batch:
    """One version (sha256) of one delivered file, as the DB holds it."""

    id: int
    agent: str
    path: str
    sha256: str
    size: int
    state: BatchState
    resume_state: BatchState | None
    attempts: int
    next_attempt_at: float | None
    last_error: str | None
    archive_path: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Batch:
        return cls(
            id=row["id"],
            agent=row["agent"],
            path=row["path"],
            sha256=row["sha256"],
            size=row["size"],
            state=BatchState(row["state"]),
            resume_state=BatchState(row["resume_state"]) if row["resume_state"] else None,
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            last_error=row["last_error"],
            archive_path=row["archive_path"],
        )


@dataclass(frozen=True)
class PairRecord:
    """A valid pair ready to import, with where it came from in its file."""

    hash: str
    question: str
    answer: str
    position: str
    item_id: str | None = None
    indicator: str | None = None
    session: int | None = None
    category: str | None = None
    difficulty: str | None = None
    type: str | None = None
    tags: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PairError:
    """Why one item of a file was not imported, and where it is."""

    position: str
    reason: str
