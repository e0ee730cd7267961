"""Search the refined corpus: dense (hnswlib cosine), lexical (SQLite FTS5 BM25) or both
fused by reciprocal rank. Indicator names are abbreviations (RSI, MVRV, SOPR) that a
small embedding model places poorly; BM25 and the catalog's aliases find them.

``dense`` is exactly what the export holds (pair vectors, cut at ``max_distance``), so a
RAG system loading the export sees the same. ``hybrid`` (the default) ranks dense
candidates by the closest of each pair's question, answer and pair vector, fuses them
with BM25 before any cut-off, and cuts nothing unless asked: every hit carries its
distance, and ``ask`` takes as evidence only those within the threshold. Lexical and
hybrid first respell query words no indexed pair contains (:mod:`daemon.search.spelling`).
See :mod:`daemon.search.ranking` for why, and BENCHMARKS.md for the figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from daemon.core.catalog import Catalog
from daemon.providers.embedders import Embedder
from daemon.refine.index import VectorIndex
from daemon.search.ranking import closest_distances, fts_match, fuse, match_terms
from daemon.search.spelling import respell
from daemon.services import Services
from daemon.store import Store
from daemon.store import corpus as q
from daemon.store import search as search_db

Mode = Literal["dense", "lexical", "hybrid"]


def default_max_distance(mode: Mode, configured: float) -> float | None:
    """The cut-off a search applies when none is given: ``configured`` ([search]
    max_distance) in dense mode; none in hybrid and lexical, which rank and show each
    hit's distance (BENCHMARKS.md: cutting before ranking cost hit@1 on short queries)."""
    return configured if mode == "dense" else None


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
        max_distance: float | None = 0.5,
        indicator: str | None = None,
        min_quality: float | None = None,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """The top ``k`` active pairs for ``query``, best first.

        ``max_distance`` drops dense hits farther than it; in hybrid mode it applies after
        fusion and spares a hit BM25 matched. None: no cut-off (the CLI's hybrid default).
        """
        cut = 2.0 if max_distance is None else max_distance  # 2: the largest cosine distance
        wanted = self._indicator_filter(indicator)
        if mode != "dense":  # dense stays the export's search, query as given
            # "Avergae Directional Index": words no pair contains, respelled to corpus words.
            query = respell(self.store, self.index.ids, query)
        pool = max(50, k * 10)
        rankings: list[list[int]] = []
        distances: dict[int, float] = {}
        lexical: set[int] = set()
        rows: dict[int, dict[str, Any]] = {}
        vector = None
        if mode in ("dense", "hybrid"):
            vector = self.embedder.embed_query(query)
            dense = self.index.query(vector, pool)
            if mode == "hybrid":
                rows.update(
                    (r["id"], r) for r in q.pairs_by_id(self.store.db, [p for p, _ in dense])
                )
                dense = self._closest_first([rows[pid] for pid, _ in dense], vector)
            else:
                dense = [(pid, d) for pid, d in dense if d <= cut]
            distances.update(dense)
            rankings.append([pid for pid, _ in dense])
        if mode in ("lexical", "hybrid"):
            rankings.append(self._lexical(query, pool))
            lexical.update(rankings[-1])
        fused = fuse(rankings)
        order = sorted(fused, key=lambda pid: -fused[pid])
        if mode == "hybrid":  # the cut-off, after fusion: BM25 evidence keeps a far hit
            order = [pid for pid in order if pid in lexical or distances[pid] <= cut]
        rows.update(
            (r["id"], r) for r in q.pairs_by_id(self.store.db, [p for p in order if p not in rows])
        )
        scores = q.scores_and_tiers_for(self.store.db, self.scorer, order)
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

    def _closest_first(
        self, rows: list[dict[str, Any]], vector: np.ndarray
    ) -> list[tuple[int, float]]:
        """Dense candidates ranked by their closest text (question, answer or pair)."""
        closest = closest_distances(self.store, self.embedder.model_id, rows, vector)
        ranked = [(int(row["id"]), d) for row, d in zip(rows, closest, strict=True)]
        return sorted(ranked, key=lambda item: item[1])

    def _indicator_filter(self, indicator: str | None) -> str | None:
        if indicator is None:
            return None
        found = self.catalog.resolve(indicator)
        return found.id if found is not None else indicator

    def _lexical(self, query: str, limit: int) -> list[int]:
        resolved = self.catalog.resolve(query)
        # "MVRV" also finds pairs that spell the name out.
        if resolved is None:
            return self.lexical_ranking(match_terms(query), None, limit)
        return self.lexical_ranking(match_terms(query, resolved.name), resolved.id, limit)

    def lexical_ranking(self, terms: list[str], indicator_id: str | None, limit: int) -> list[int]:
        """Active pairs matching any of ``terms`` (words or phrases), best BM25 first, the
        pairs of ``indicator_id`` (the catalog indicator the query names) before others."""
        if not terms:
            return []
        active = self.index.ids
        ranked = [
            pid
            for pid in search_db.lexical_matches(self.store.db, fts_match(terms), limit * 4)
            if pid in active
        ]
        if indicator_id is not None:
            of_indicator = search_db.pairs_of_indicator(self.store.db, indicator_id)
            ranked.sort(key=lambda pid: 0 if pid in of_indicator else 1)
        return ranked[:limit]

    def _fill_distances(self, hits: list[Hit], vector: np.ndarray) -> None:
        """Lexical-only hits get their distance too (closest text), from stored vectors."""
        missing = [h for h in hits if h.distance is None]
        if not missing:
            return
        rows = q.pairs_by_id(self.store.db, [h.pair_id for h in missing])
        closest = closest_distances(self.store, self.embedder.model_id, rows, vector)
        by_id = dict(zip([r["id"] for r in rows], closest, strict=True))
        for hit in missing:
            hit.distance = by_id[hit.pair_id]
