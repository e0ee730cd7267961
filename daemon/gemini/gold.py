"""How far a scorer agrees with a gold set of pairs whose verdict is known.

The gold set is JSON Lines: ``{"id", "question", "answer", "verdict": "good"|"poor"}``.
A pair counts as judged good at ``bar`` (60, the floor of the "fair" tier) or above.
Any Scorer works, so the judge can be compared with the local rubric on the same set.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from daemon.providers.scorers import PairToScore, Scorer


def load_gold(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def agreement(scorer: Scorer, gold: list[dict[str, Any]], bar: float = 60.0) -> dict[str, Any]:
    """Share of gold pairs the scorer puts on the right side of ``bar``, with the misses.
    Pairs the scorer returns no score for (malformed, budget) count as unanswered."""
    pairs = [
        PairToScore(
            hashlib.sha256(f"gold:{g['id']}".encode()).hexdigest(), g["question"], g["answer"]
        )
        for g in gold
    ]
    by_hash = {s.pair_hash: s.score for s in scorer.score(pairs)}
    misses, agreed, answered = [], 0, 0
    for g, pair in zip(gold, pairs, strict=True):
        score = by_hash.get(pair.hash)
        if score is None:
            continue
        answered += 1
        said = "good" if score >= bar else "poor"
        if said == g["verdict"]:
            agreed += 1
        else:
            misses.append({"id": g["id"], "expected": g["verdict"], "score": score})
    return {
        "scorer": scorer.name,
        "pairs": len(gold),
        "answered": answered,
        "agreed": agreed,
        "agreement": round(agreed / answered, 3) if answered else None,
        "misses": misses,
    }
