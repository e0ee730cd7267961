"""Quality tiers: the seed's thresholds on a 0-100 score, shared by every scorer,
report and query."""

from __future__ import annotations

TIERS = (("premium", 90.0), ("good", 80.0), ("fair", 60.0))


def tier(score: float) -> str:
    """premium >= 90, good >= 80, fair >= 60, else poor."""
    return next((name for name, floor in TIERS if score >= floor), "poor")
