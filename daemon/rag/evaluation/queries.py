"""The queries an evaluation runs: a built-in set generated from the catalog, and a
user's JSON Lines file (``{"query": ..., "indicator": ... and/or "pair_ids": [...]}``)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from daemon.core.catalog import Catalog, Indicator
from daemon.core.errors import InboxdError

# Typical questions a RAG user asks about an indicator; with the name and abbreviation
# they make up to six queries an indicator.
TEMPLATES = (
    "What does the {name} measure?",
    "How is the {name} calculated?",
    "How do traders read the {name} in crypto markets?",
    "What are the limitations of the {name}?",
)
_ABBREVIATION_MAX = 8


class QueryFileError(InboxdError):
    """A user query file cannot be used; names the file, line and reason."""


@dataclass(frozen=True)
class EvalQuery:
    text: str
    indicators: frozenset[str]  # relevant: a pair of any of these indicators ...
    pair_ids: frozenset[int]  # ... or one of these pairs (or a duplicate of one)
    origin: str  # "builtin:name", "builtin:template", "user:line 3"


def _without_parameters(alias: str) -> str:
    """``RSI (14)`` -> ``RSI``: from the first ``(`` to the last ``)``, with the spaces
    around, is dropped. A scan, not ``\\s*\\(.*\\)\\s*``: linear on any catalog."""
    start, end = alias.find("("), alias.rfind(")")
    if start < 0 or end < start:
        return alias
    return alias[:start].rstrip() + alias[end + 1 :].lstrip()


def _abbreviation(indicator: Indicator) -> str | None:
    """The indicator's abbreviation (RSI, MACD, MVRV), from its aliases or its id."""
    candidates = [_without_parameters(alias).strip() for alias in indicator.aliases]
    candidates.append(indicator.id.upper())
    short = [c for c in candidates if c.isupper() and c.isalnum() and len(c) <= _ABBREVIATION_MAX]
    return min(short, key=len) if short else None


def builtin_queries(catalog: Catalog, present: Iterable[str]) -> list[EvalQuery]:
    """Names, abbreviations and typical questions for each catalog indicator the corpus
    has pairs of (an indicator with none cannot be found by either side)."""
    wanted = set(present)
    found: list[EvalQuery] = []
    for indicator in catalog.indicators:
        if indicator.id not in wanted:
            continue
        relevant = frozenset({indicator.id})
        found.append(EvalQuery(indicator.name, relevant, frozenset(), "builtin:name"))
        abbreviation = _abbreviation(indicator)
        if abbreviation and abbreviation.casefold() != indicator.name.casefold():
            found.append(EvalQuery(abbreviation, relevant, frozenset(), "builtin:abbreviation"))
        for template in TEMPLATES:
            text = template.format(name=indicator.name)
            found.append(EvalQuery(text, relevant, frozenset(), "builtin:question"))
    return found


def load_user_queries(path: Path, catalog: Catalog) -> list[EvalQuery]:
    """Queries from a JSON Lines file; each needs ``query`` and an expectation."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise QueryFileError(f"{path}: cannot read the query file: {exc}") from exc
    found: list[EvalQuery] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise QueryFileError(f"{where}: not JSON ({exc})") from exc
        if not isinstance(item, dict) or not str(item.get("query") or "").strip():
            raise QueryFileError(f'{where}: needs an object with a non-empty "query"')
        raw = item.get("indicator", item.get("indicators", []))
        names = [raw] if isinstance(raw, str) else list(raw or [])
        indicators = set()
        for name in names:
            resolved = catalog.resolve(str(name))
            indicators.add(resolved.id if resolved is not None else str(name))
        ids = item.get("pair_ids", [])
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise QueryFileError(f'{where}: "pair_ids" must be a list of integers')
        if not indicators and not ids:
            raise QueryFileError(f'{where}: give an expected "indicator" and/or "pair_ids"')
        found.append(
            EvalQuery(
                str(item["query"]).strip(),
                frozenset(indicators),
                frozenset(ids),
                f"user:line {number}",
            )
        )
    if not found:
        raise QueryFileError(f"{path}: no queries in the file")
    return found


def sample(queries: list[EvalQuery], limit: int | None, seed: int = 0) -> list[EvalQuery]:
    """At most ``limit`` queries, the same ones for the same input (seeded)."""
    if limit is None or len(queries) <= limit:
        return queries
    chosen = sorted(random.Random(seed).sample(range(len(queries)), limit))
    return [queries[i] for i in chosen]
