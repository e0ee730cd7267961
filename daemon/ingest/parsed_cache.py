"""A bounded cache of validated pairs, so the import step does not parse a file again.

Validate and import both need a batch's pairs; the import, usually the very next step,
takes them from here instead of parsing and validating the file again (that was ~40% of
import time). Bounded by pairs held, so a burst of large files cannot grow it without
end; a miss (after a restart, say) just parses again.
"""

from __future__ import annotations

from collections import OrderedDict

from daemon.core.records import Batch, PairError, PairRecord

Validated = tuple[list[PairRecord], list[PairError]]

_CACHE_PAIRS = 50_000


class ParsedCache:
    """Validated pairs of recent batch versions, oldest dropped first."""

    def __init__(self, budget: int = _CACHE_PAIRS) -> None:
        self.budget = budget
        self._held: OrderedDict[tuple[int, str], Validated] = OrderedDict()

    def put(self, batch: Batch, value: Validated) -> None:
        self._held[(batch.id, batch.sha256)] = value
        while sum(len(p) + len(e) for p, e in self._held.values()) > self.budget:
            self._held.popitem(last=False)

    def take(self, batch: Batch) -> Validated | None:
        return self._held.pop((batch.id, batch.sha256), None)
