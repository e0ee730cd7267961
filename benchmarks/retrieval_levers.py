"""Each ranking lever of issue 13 alone, on a set's processed root (``retrieval.py
--levers``): how a pair is embedded, how the distance cut-off treats short queries and
lexical-only hits, the fusion (RRF constant and weights, score-normalised fusion), the
query-side use of the catalog, and a spelling fix of query words against the corpus.

Everything here is exact search (numpy over every indexed pair, top 10) from the vectors
the pipeline stored, plus one new embedding per pair for the concatenation variant, so
a variant differs from ``Searcher.search`` (hnswlib, 50 candidates) by a query or two at
most. The same judge as the modes: a pair of the query's indicator, or its kept pair.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks.retrieval import Judge, K, Ranked, RetrievalSet, summarise
from daemon.core.config import Config
from daemon.core.logs import get_logger
from daemon.providers.embedders import normalise_rows
from daemon.refine.corpus import text_vectors
from daemon.runtime.wiring import open_searcher
from daemon.search.ranking import fuse, match_terms
from daemon.search.searcher import Searcher
from daemon.search.spelling import respell
from daemon.store import corpus as q

POOL = 50  # candidates a side, as Searcher.search takes for k <= 5
Rankings = list[list[int]]


def levers(kb: RetrievalSet, config: Config) -> dict[str, dict[str, float]]:
    """hit@1, hit@5 and MRR@10 of every variant, by name."""
    searcher = open_searcher(config, get_logger())
    try:
        return _Study(searcher, kb).run()
    finally:
        searcher.store.close()


class _Study:
    def __init__(self, searcher: Searcher, kb: RetrievalSet) -> None:
        self.searcher = searcher
        self.kb = kb
        self.judge = Judge.of(searcher, kb)
        self.ids = sorted(searcher.index.ids)
        self.rows = q.pairs_by_id(searcher.store.db, self.ids)
        self.texts = [str(query["query"]) for query in kb.queries]
        embedder = searcher.embedder
        questions, answers = text_vectors(searcher.store, embedder.model_id, self.rows)
        concatenated = embedder.embed_documents(
            [r["question"] + " " + r["answer"] for r in self.rows]
        )
        pair_vectors = normalise_rows(questions + answers)
        typed = embedder.embed_queries(self.texts)
        respelled = embedder.embed_queries([self.respelled(text) for text in self.texts])
        self.sims: dict[str, Any] = {}
        for suffix, x in (("", typed), (" (respelled query)", respelled)):
            sims = {
                "sum": x @ pair_vectors.T,
                "question": x @ questions.T,
                "answer": x @ answers.T,
                "concatenation": x @ concatenated.T,
            }
            sims["max of question and answer"] = np.maximum(sims["question"], sims["answer"])
            sims["closest of question, answer, sum"] = np.maximum(
                sims["max of question and answer"], sims["sum"]
            )
            sims["closest of question, answer, concatenation"] = np.maximum(
                sims["max of question and answer"], sims["concatenation"]
            )
            self.sims.update({name + suffix: value for name, value in sims.items()})

    # -- the two sides --------------------------------------------------------------------

    def dense(self, name: str, cut: float | None = None) -> tuple[Rankings, list[dict[int, float]]]:
        """Top ``POOL`` by one similarity, cut at ``cut`` (distance); with distances."""
        rankings, distances = [], []
        for row in self.sims[name]:
            top = [int(i) for i in np.argsort(-row, kind="stable")[:POOL]]
            kept = [i for i in top if cut is None or 1 - row[i] <= cut]
            rankings.append([self.ids[i] for i in kept])
            distances.append({self.ids[i]: float(1 - row[i]) for i in top})
        return rankings, distances

    def lexical(
        self,
        *,
        phrases: bool = True,
        catalog: str = "whole query",
        spelling: bool = True,
        stop_words: bool = True,
    ) -> Rankings:
        """BM25 rankings as ``Searcher`` builds them, with one rule changed."""
        found = []
        for text in self.texts:
            query = self.respelled(text) if spelling else text
            resolved = self.resolved(query, catalog)
            names = [i.name for i in resolved]
            terms = match_terms(query, *names) if stop_words else _every_term(query, *names)
            if not phrases:
                terms = [term for term in terms if " " not in term]
            indicator = resolved[0].id if len(resolved) == 1 else None
            found.append(self.searcher.lexical_ranking(terms, indicator, POOL))
        return found

    def respelled(self, text: str) -> str:
        """The query as the lexical side reads it (``daemon.search.spelling``)."""
        return respell(self.searcher.store, self.searcher.index.ids, text)

    def resolved(self, query: str, catalog: str) -> list[Any]:
        """Catalog indicators the query names: none, the whole query, or any run of up
        to four of its words."""
        if catalog == "off":
            return []
        resolve = self.searcher.catalog.resolve
        if catalog == "whole query":
            hit = resolve(query)
            return [hit] if hit is not None else []
        words = query.split()
        found = {}
        for n in range(min(4, len(words)), 0, -1):
            for start in range(len(words) - n + 1):
                hit = resolve(" ".join(words[start : start + n]))
                if hit is not None:
                    found[hit.id] = hit
        return list(found.values())

    # -- fusion ---------------------------------------------------------------------------

    @staticmethod
    def rrf(*sides: Rankings, k: int = 10, weights: Sequence[float] | None = None) -> Rankings:
        weights = weights or [1.0] * len(sides)
        found = []
        for parts in zip(*sides, strict=True):
            scores: dict[int, float] = {}
            for weight, ranking in zip(weights, parts, strict=True):
                for item, score in fuse([ranking], k).items():
                    scores[item] = scores.get(item, 0.0) + weight * score
            found.append(sorted(scores, key=lambda pid: -scores[pid]))
        return found

    def normalised(self, dense: str, lexical: Rankings, weight: float) -> Rankings:
        """Score fusion: min-max normalised cosine (over the dense pool) and reciprocal
        BM25 rank, ``weight`` on dense."""
        found = []
        for row, ranking in zip(self.sims[dense], lexical, strict=True):
            top = np.argsort(-row, kind="stable")[:POOL]
            sims = {self.ids[i]: float(row[i]) for i in top}
            low, high = min(sims.values()), max(sims.values())
            scores = {pid: weight * (s - low) / max(high - low, 1e-9) for pid, s in sims.items()}
            for rank, pid in enumerate(ranking):
                scores[pid] = scores.get(pid, 0.0) + (1 - weight) * (1 - rank / len(ranking))
            found.append(sorted(scores, key=lambda pid: -scores[pid]))
        return found

    @staticmethod
    def cut_after(
        fused: Rankings, lexical: Rankings, distances: list[dict[int, float]], cut: float
    ) -> Rankings:
        """Fused rankings without the hits past ``cut`` that BM25 did not match."""
        return [
            [p for p in ranking if p in set(lex) or dist.get(p, 2.0) <= cut]
            for ranking, lex, dist in zip(fused, lexical, distances, strict=True)
        ]

    # -- the study ------------------------------------------------------------------------

    def run(self) -> dict[str, dict[str, float]]:
        r = " (respelled query)"
        typed_closest, _ = self.dense("closest of question, answer, sum")
        closest, distances = self.dense("closest of question, answer, sum" + r)
        words = self.lexical(phrases=False, spelling=False, stop_words=False)
        phrases = self.lexical(spelling=False, stop_words=False)
        respelled = self.lexical(stop_words=False)
        lexical = self.lexical()
        sum_cut, _ = self.dense("sum", 0.5)
        variants: dict[str, Rankings] = {}
        for name in self.sims:  # 1. how a pair is embedded (the query as typed, as dense mode)
            if not name.endswith(r):
                variants[f"dense: {name}, no cut-off"] = self.dense(name)[0]
        variants["dense: sum, cut at 0.5 (mode dense)"] = sum_cut
        variants["lexical: words"] = words
        variants["lexical: + adjacent pairs as phrases"] = phrases
        variants["lexical: + unknown words respelled"] = respelled
        variants["lexical: + no stop words alone or in pairs (mode lexical)"] = lexical
        now = self.rrf(closest, lexical)
        # The path from the old hybrid to the default, one step at a time.
        variants["hybrid old: sum cut at 0.5, words, RRF 60"] = self.rrf(sum_cut, words, k=60)
        variants["... + no cut-off before fusion"] = self.rrf(self.dense("sum")[0], words, k=60)
        variants["... + closest text"] = self.rrf(typed_closest, words, k=60)
        variants["... + phrases"] = self.rrf(typed_closest, phrases, k=60)
        variants["... + RRF k = 10"] = self.rrf(typed_closest, phrases)
        variants["... + respelling, lexical side only"] = self.rrf(typed_closest, respelled)
        variants["... + respelling, both sides"] = self.rrf(closest, respelled)
        variants["... + stop words left out (hybrid now)"] = now
        # 2. the cut-off: before fusion, after it sparing BM25 matches (hybrid now: none)
        variants["hybrid now, cut at 0.5 before fusion"] = self.rrf(
            self.dense("closest of question, answer, sum" + r, 0.5)[0], lexical
        )
        variants["hybrid now, cut at 0.5 after fusion, BM25 matches spared"] = self.cut_after(
            now, lexical, distances, 0.5
        )
        # 1 again, fused: the pair's representation inside hybrid
        for name in ("sum", "concatenation", "max of question and answer"):
            variants[f"hybrid now with dense = {name}"] = self.rrf(self.dense(name + r)[0], lexical)
        variants["hybrid now with dense = closest of question, answer, concatenation"] = self.rrf(
            self.dense("closest of question, answer, concatenation" + r)[0], lexical
        )
        # 3. fusion
        for k in (5, 30, 60):
            variants[f"hybrid now, RRF k = {k}"] = self.rrf(closest, lexical, k=k)
        for dense_weight in (0.5, 0.75, 1.5, 2.0):
            variants[f"hybrid now, RRF weights dense {dense_weight} : lexical 1"] = self.rrf(
                closest, lexical, weights=[dense_weight, 1.0]
            )
        for weight in (0.3, 0.5, 0.7):
            variants[f"score-normalised fusion, {weight} on dense"] = self.normalised(
                "closest of question, answer, sum" + r, lexical, weight
            )
        # 4. the catalog on the query side
        variants["hybrid now, no catalog expansion"] = self.rrf(
            closest, self.lexical(catalog="off")
        )
        variants["hybrid now, catalog names found anywhere in the query"] = self.rrf(
            closest, self.lexical(catalog="any words")
        )
        return {name: self.score(ranking) for name, ranking in variants.items()}

    def score(self, rankings: Rankings) -> dict[str, float]:
        relevant: Callable[[int, str], bool] = self.judge.relevant
        return summarise(
            [
                Ranked([relevant(pid, query["key"]) for pid in found[:K]], [])
                for query, found in zip(self.kb.queries, rankings, strict=True)
            ]
        )


def _every_term(*texts: str) -> list[str]:
    """``match_terms`` before stop words were left out: every word and adjacent pair."""
    terms: list[str] = []
    for text in texts:
        words = [word.casefold() for word in re.findall(r"\w+", text)]
        terms += words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    return list(dict.fromkeys(terms))
