"""Quality scorers: one protocol (``base``), implementations chosen by
``[scoring] provider`` through :data:`SCORERS`."""

from __future__ import annotations

from daemon.core.config import Config
from daemon.core.quality import TIERS, tier
from daemon.providers.registry import Registry
from daemon.providers.scorers.base import PairToScore, Score, Scorer

__all__ = ["SCORERS", "TIERS", "PairToScore", "Score", "Scorer", "make_scorer", "tier"]

SCORERS: Registry[Scorer] = Registry(
    "scoring.provider",
    {
        "rubric": "daemon.providers.scorers.rubric:from_config",
        # Batch mode judges in the corpus run's Batch API job; interactive mode per batch.
        "gemini": "daemon.gemini.judge:from_config",
    },
)


def make_scorer(config: Config) -> Scorer:
    """The scorer the config names."""
    return SCORERS.build(config.scoring.provider, config)
