"""The local quality rubric: transparent sub-scores a person can read and argue with.

    relevance     25%  cosine of the question's and the answer's embeddings
    completeness  25%  enough words and sentences to answer, without rambling
    specificity   30%  formulas, periods, thresholds, numbers, named parameters
    structure     20%  sentences that start and end properly, a real question

Red flags (placeholder, refusal, truncated text, question repeated as answer, one-liner)
each take a fixed penalty off the weighted sum; the result is clamped to 0-100.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from daemon.core.config import Config
from daemon.providers.scorers.base import PairToScore, Score

WEIGHTS = {"relevance": 0.25, "completeness": 0.25, "specificity": 0.30, "structure": 0.20}
PENALTY = 30.0

_PLACEHOLDER = re.compile(
    r"\b(todo|tbd|lorem ipsum|placeholder|insert (answer|text) here|xxx+|fill (this|me) in)\b"
    r"|\[(insert|answer|todo)[^\[\]]*\]",  # not past the next "[": linear on "[todo[todo..."
    re.I,
)
_REFUSAL = re.compile(
    r"\b(i(['’]m| am) (sorry|unable)|i can(no|['’])t (help|answer|provide)|as an ai\b|"
    r"i do not have (access|information)|cannot provide (financial|that))",
    re.I,
)
_FORMULA = re.compile(r"[=×÷^/]|\b(sum|mean|average|ratio|divided by|multiplied by)\b", re.I)
_NUMBER = re.compile(r"\b\d+(\.\d+)?%?")
_PERIOD = re.compile(
    r"\b\d+[- ]?(period|day|week|hour|bar|candle|month)s?\b|\b(daily|weekly)\b", re.I
)
_THRESHOLD = re.compile(r"\b(above|below|over|under|exceeds?|crosses?)\b[^.]{0,30}\d", re.I)
# Possessive (*+): the two letter classes overlap, and backtracking between them made a
# long capitalised word cost quadratic time; giving letters back can never reach the "(".
_PARAMETER = re.compile(r"\b[A-Z][A-Za-z]*+_?[a-z{]*+\b\s*\(|\b(alpha|beta|sigma|N|k)\b\s*=")
_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _overlap(question: str, answer: str) -> float:
    q, a = set(_words(question)), set(_words(answer))
    return len(q & a) / len(a) if a else 1.0


def relevance_score(cosine: float | None) -> float:
    """0 at cosine 0.15 or less, 100 at 0.60 or more (MiniLM's range for Q&A pairs)."""
    if cosine is None:
        return 50.0
    return max(0.0, min(100.0, (cosine - 0.15) / 0.45 * 100))


def completeness_score(answer: str) -> float:
    words = len(_words(answer))
    sentences = max(1, len(re.findall(r"[.!?](\s|$)", answer)))
    by_length = 100.0 if 35 <= words <= 350 else (words / 35 * 100 if words < 35 else 80.0)
    return min(100.0, by_length * (1.0 if sentences >= 2 else 0.8))


def specificity_score(answer: str) -> float:
    signals = [
        bool(_FORMULA.search(answer)),
        len(_NUMBER.findall(answer)) >= 1,
        len(_NUMBER.findall(answer)) >= 3,
        bool(_PERIOD.search(answer)),
        bool(_THRESHOLD.search(answer)),
        bool(_PARAMETER.search(answer)),
    ]
    return min(100.0, 20.0 + 20.0 * sum(signals))


def structure_score(question: str, answer: str) -> float:
    points = 0.0
    points += 25 if question.rstrip().endswith("?") else 10
    points += 25 if answer[:1].isupper() or answer[:1].isdigit() else 0
    points += 25 if answer.rstrip().endswith((".", "!", ")", "%", "`")) else 0
    points += 25 if not answer.isupper() and "  " not in answer.strip() else 10
    return points


def red_flags(question: str, answer: str, cosine: float | None) -> list[str]:
    flags = []
    if _PLACEHOLDER.search(answer):
        flags.append("placeholder")
    if _REFUSAL.search(answer):
        flags.append("refusal")
    stripped = answer.rstrip()
    if stripped.endswith(("...", "…", ",", ":", ";", "-")) or (
        len(_words(answer)) > 12 and stripped[-1:].isalpha()
    ):
        flags.append("truncated")
    if _overlap(question, answer) > 0.8 or (cosine is not None and cosine > 0.97):
        flags.append("repeats question")
    if len(_words(answer)) < 8:
        flags.append("one-liner")
    return flags


class RubricScorer:
    """The default scorer; needs no network. Bump ``name`` when the rubric changes."""

    name = "rubric/1"

    def score(self, pairs: Sequence[PairToScore]) -> list[Score]:
        return [self._one(pair) for pair in pairs]

    def _one(self, pair: PairToScore) -> Score:
        sub = {
            "relevance": relevance_score(pair.relevance),
            "completeness": completeness_score(pair.answer),
            "specificity": specificity_score(pair.answer),
            "structure": structure_score(pair.question, pair.answer),
        }
        flags = red_flags(pair.question, pair.answer, pair.relevance)
        weighted = sum(WEIGHTS[key] * value for key, value in sub.items())
        total = max(0.0, min(100.0, weighted - PENALTY * len(flags)))
        rounded = {key: round(value, 1) for key, value in sub.items()}
        why = ", ".join(f"{k} {v:.0f}" for k, v in rounded.items())
        if flags:
            why += "; flags: " + ", ".join(flags)
        return Score(pair.hash, round(total, 1), rounded, flags, why)


def from_config(config: Config) -> RubricScorer:
    """The registry's factory for ``rubric`` (it has no settings)."""
    return RubricScorer()
