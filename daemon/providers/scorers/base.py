"""The scorer protocol, what it scores and returns, and the quality tiers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from daemon.core.quality import tier


@dataclass(frozen=True)
class PairToScore:
    hash: str
    question: str
    answer: str
    relevance: float | None = None  # cosine of question and answer vectors, if known


@dataclass(frozen=True)
class Score:
    pair_hash: str
    score: float
    subscores: dict[str, float]
    flags: list[str] = field(default_factory=list)
    rationale: str | None = None

    @property
    def tier(self) -> str:
        return tier(self.score)

    def as_row(self) -> dict[str, object]:
        return {
            "pair_hash": self.pair_hash,
            "score": self.score,
            "tier": self.tier,
            "subscores": {**self.subscores, "flags": self.flags},
            "rationale": self.rationale,
        }


class Scorer(Protocol):
    #: name/version: a new version re-scores, nothing else does.
    name: str

    def score(self, pairs: Sequence[PairToScore]) -> list[Score]: ...
