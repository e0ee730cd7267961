"""Search the refined corpus: dense (hnswlib cosine), lexical (SQLite FTS5 BM25) or both
fused by reciprocal rank. Indicator names are abbreviations (RSI, MVRV, SOPR) that a
small embedding model places poorly; BM25 and the catalog's aliases find them."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from daemon.core.catalog import Catalog
from daemon.providers.embedders import Embedder
from daemon.refine.corpus import pair_vectors
from daemon.refine.index import VectorIndex
from daemon.services import Services
from daemon.store import Store
from daemon.store import corpus as q

Mode = Literal["dense", "lexical", "hybrid"]
RRF_K = 60  # the constant of Cormack et al.; damps the weight of the very top ranks
_TOKEN = re.compile(r"\w+")


@dataclass
class Hit:
    pair_id: int
    question: str
    answer: str
    indicator: str | None
    quality: float | None
    tier: str | None
    distance: float | None
    score: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Searcher:
    """Everything a query needs, opened once (the CLI, the daemon, benchmarks)."""

    store: Store
    index: VectorIndex
    embedder: Embedder
    catalog: Catalog
    scorer: str

    @classmethod
    def over(cls, services: Services) -> Searcher:
        """A searcher over a root's services (the daemon's, or a read-only command's)."""
        return cls(
            services.store,
            services.index,
            services.embedder,
            services.catalog,
            services.scorer.name,
        )

    def search(
        self,
        query: str,
        *,
        k: int = 5,
        max_distance: float = 0.5,
        indicator: str | None = None,
        min_quality: float | None = None,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """The top ``k`` active pairs for ``query``, best first."""
        wanted = self._indicator_filter(indicator)
        pool = max(50, k * 10)
        rankings: list[list[int]] = []
        distances: dict[int, float] = {}
        vector = None
        if mode in ("dense", "hybrid"):
            vector = self.embedder.embed_query(query)
            dense = [(pid, d) for pid, d in self.index.query(vector, pool) if d <= max_distance]
            distances.update(dense)
            rankings.append([pid for pid, _ in dense])
        if mode in ("lexical", "hybrid"):
            rankings.append(self._lexical(query, pool))
        fused: dict[int, float] = {}
        for ranking in rankings:
            for rank, pair_id in enumerate(ranking):
                fused[pair_id] = fused.get(pair_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        order = sorted(fused, key=lambda pid: -fused[pid])
        rows = {r["id"]: r for r in q.pairs_by_id(self.store.db, order)}
        scores = self._scores(order)
        hits: list[Hit] = []
        for pair_id in order:
            row = rows[pair_id]
            quality, tier = scores.get(pair_id, (None, None))
            if wanted is not None and row["indicator"] != wanted:
                continue
            if min_quality is not None and (quality is None or quality < min_quality):
                continue
            hits.append(
                Hit(
                    pair_id,
                    row["question"],
                    row["answer"],
                    row["indicator"],
                    quality,
                    tier,
                    distances.get(pair_id),
                    round(fused[pair_id], 6),
                )
            )
            if len(hits) == k:
                break
        if vector is not None:
            self._fill_distances(hits, vector)
        return hits

    def _indicator_filter(self, indicator: str | None) -> str | None:
        if indicator is None:
            return None
        found = self.catalog.resolve(indicator)
        return found.id if found is not None else indicator

    def _lexical(self, query: str, limit: int) -> list[int]:
        tokens = _TOKEN.findall(query)
        resolved = self.catalog.resolve(query)
        if resolved is not None:  # "MVRV" also finds pairs that spell the name out
            tokens += _TOKEN.findall(resolved.name)
        if not tokens:
            return []
        match = " OR ".join(f'"{token}"' for token in dict.fromkeys(tokens))
        rows = self.store.db.execute(
            "SELECT rowid FROM pairs_fts WHERE pairs_fts MATCH ? ORDER BY bm25(pairs_fts) LIMIT ?",
            [match, limit * 4],
        ).fetchall()
        active = self.index.ids
        ranked = [int(r[0]) for r in rows if int(r[0]) in active]
        if resolved is not None:
            of_indicator = self._of_indicator(resolved.id)
            ranked.sort(key=lambda pid: 0 if pid in of_indicator else 1)
        return ranked[:limit]

    def _of_indicator(self, indicator_id: str) -> set[int]:
        return {
            int(r[0])
            for r in self.store.db.execute(
                "SELECT id FROM pairs WHERE indicator = ?", [indicator_id]
            ).fetchall()
        }

    def _scores(self, pair_ids: list[int]) -> dict[int, tuple[float, str]]:
        found: dict[int, tuple[float, str]] = {}
        for start in range(0, len(pair_ids), 500):
            chunk = pair_ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for pid, score, tier in self.store.db.execute(
                f"SELECT p.id, s.score, s.tier FROM pairs p JOIN scores s"
                f" ON s.pair_hash = p.hash AND s.scorer = ? WHERE p.id IN ({marks})",
                [self.scorer, *chunk],
            ).fetchall():
                found[int(pid)] = (float(score), str(tier))
        return found

    def _fill_distances(self, hits: list[Hit], vector: np.ndarray) -> None:
        """Lexical-only hits get their cosine distance too, from stored vectors."""
        missing = [h for h in hits if h.distance is None]
        if not missing:
            return
        rows = q.pairs_by_id(self.store.db, [h.pair_id for h in missing])
        by_id = dict(
            zip(
                [r["id"] for r in rows],
                pair_vectors(self.store, self.embedder.model_id, rows),
                strict=True,
            )
        )
        for hit in missing:
            hit.distance = round(1.0 - float(by_id[hit.pair_id] @ vector), 4)
