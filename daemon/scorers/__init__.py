"""Quality scorers: one protocol, implementations selected through ``SCORERS``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from daemon.config import Config
from daemon.errors import ConfigError

TIERS = (("premium", 90.0), ("good", 80.0), ("fair", 60.0))


def tier(score: float) -> str:
    """premium >= 90, good >= 80, fair >= 60, else poor."""
    return next((name for name, floor in TIERS if score >= floor), "poor")


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


def _rubric(config: Config) -> Scorer:
    from daemon.scorers.rubric import RubricScorer

    return RubricScorer()


def _gemini(config: Config) -> Scorer:
    # Batch mode judges in the corpus run's Batch API job; interactive mode per batch.
    from daemon.gemini.judge import DeferredJudge, JudgeScorer

    return DeferredJudge(config) if config.gemini.mode == "batch" else JudgeScorer(config)


SCORERS: dict[str, Callable[[Config], Scorer]] = {"rubric": _rubric, "gemini": _gemini}


def make_scorer(config: Config) -> Scorer:
    factory = SCORERS.get(config.scoring.provider)
    if factory is None:
        raise ConfigError(
            f"scoring.provider: {config.scoring.provider!r} is not available here"
            f" (choose from {', '.join(sorted(SCORERS))})"
        )
    return factory(config)
