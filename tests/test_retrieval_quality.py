"""Retrieval quality on text nobody in this project wrote: the committed sets of
``benchmarks/data/retrieval`` (indicator docs of one library as the knowledge base,
other libraries' names, descriptions and abbreviations as queries) go through the real
pipeline into a temp root, and the default search is scored with the real model against
the bare baseline a user could build in ten lines, in the same run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from benchmarks import retrieval
from benchmarks.retrieval_sets import LIBRARIES
from daemon.search.ranking import fts_match, fuse, match_terms
from daemon.search.searcher import default_max_distance

# --- the sets themselves (no model) --------------------------------------------------------


@pytest.mark.parametrize("name", retrieval.SETS)
def test_every_query_has_relevant_pairs_written_by_another_library(name: str) -> None:
    """Each query's key names at least one pair of the knowledge base, and no query comes
    from the library the knowledge base was taken from."""
    kb = retrieval.load_set(name)
    keys = Counter(pair["key"] for pair in kb.pairs)
    assert all(keys[query["key"]] for query in kb.queries)
    assert {pair["id"].split(":")[0] for pair in kb.pairs} == {name}
    assert all(not query["source"].startswith(f"{name}:") for query in kb.queries)
    assert {query["source"].split(":")[0] for query in kb.queries} <= set(LIBRARIES) - {name}


def test_the_sets_hold_enough_queries_of_every_kind() -> None:
    """At least 100 queries in all, and each set has descriptions, names, abbreviations,
    misspellings and crypto questions."""
    total = 0
    for name in retrieval.SETS:
        kinds = Counter(query["kind"] for query in retrieval.load_set(name).queries)
        assert set(kinds) == {"description", "name", "abbreviation", "misspelling", "question"}
        total += sum(kinds.values())
    assert total >= 100


def test_summary_file_matches_the_committed_sets() -> None:
    """sets.json counts exactly the pairs and queries committed, and names each source's
    pinned version and licence."""
    summary = json.loads((retrieval.DATA / "sets.json").read_text())
    for name in retrieval.SETS:
        kb = retrieval.load_set(name)
        assert summary["sets"][name]["pairs"] == len(kb.pairs)
        assert summary["sets"][name]["queries"] == len(kb.queries)
    assert all(source["version"] and source["licence"] for source in summary["sources"].values())


# --- the ranking helpers --------------------------------------------------------------------


def test_match_terms_adds_adjacent_words_as_phrases_once() -> None:
    """Words, then adjacent word pairs, case-folded and without repeats."""
    assert match_terms("Relative Strength Index", "RSI relative strength") == [
        "relative",
        "strength",
        "index",
        "relative strength",
        "strength index",
        "rsi",
        "rsi relative",
    ]


def test_stop_words_are_searched_only_inside_a_phrase_with_another_word() -> None:
    """ "How is the rate of change read" searches neither "how", "is", "the", "of" nor
    "is the", but keeps "rate of" and "of change"."""
    assert match_terms("How is the rate of change read") == [
        "rate",
        "change",
        "read",
        "the rate",
        "rate of",
        "of change",
        "change read",
    ]
    assert fts_match(["rsi", "strength index"]) == '"rsi" OR "strength index"'


def test_fusion_rewards_items_ranked_well_by_both_sides() -> None:
    """An item second in both rankings beats one first in only one of them."""
    fused = fuse([[1, 2, 3], [4, 2, 5]])
    assert max(fused, key=lambda item: fused[item]) == 2


def test_only_dense_mode_cuts_by_distance_when_no_cut_off_is_given() -> None:
    """Without --max-distance, dense mode cuts at [search] max_distance and hybrid and
    lexical cut nothing (they rank; every hit still shows its distance)."""
    assert default_max_distance("dense", 0.5) == 0.5
    assert default_max_distance("hybrid", 0.5) is None
    assert default_max_distance("lexical", 0.5) is None


# --- quality with the real model ------------------------------------------------------------


@pytest.fixture(scope="module", params=retrieval.SETS)
def scored(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model: Any
) -> dict[str, Any]:
    """One set delivered into a temp root, processed by the real pipeline (the real
    all-MiniLM-L6-v2), and scored: the bare baseline and the default (hybrid) search on
    every query, in the same run."""
    kb = retrieval.load_set(request.param)
    root: Path = tmp_path_factory.mktemp(kb.name)
    return retrieval.evaluate_set(kb, root, modes=("baseline", "hybrid"))


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["hit_at_1", "hit_at_5", "mrr_at_10"])
def test_default_search_is_at_least_as_good_as_the_bare_baseline(
    scored: dict[str, Any], metric: str
) -> None:
    """On every set, hybrid search is at least as good as bare MiniLM over question +
    answer with exact cosine and no cut-off, on hit@1, hit@5 and MRR@10."""
    hybrid, baseline = scored["modes"]["hybrid"], scored["modes"]["baseline"]
    assert hybrid[metric] >= baseline[metric], (scored["set"], metric, hybrid, baseline)


@pytest.mark.slow
def test_default_search_keeps_its_measured_lead(scored: dict[str, Any]) -> None:
    """The figures in BENCHMARKS.md hold: hit@1 at least 0.86 and hit@5 at least 0.92 on
    each set, every query answered, and more top hits within the seed's 0.5 distance than
    the baseline has (a bare name is close to the question that names it)."""
    hybrid, baseline = scored["modes"]["hybrid"], scored["modes"]["baseline"]
    assert hybrid["hit_at_1"] >= 0.86, hybrid
    assert hybrid["hit_at_5"] >= 0.92, hybrid
    assert hybrid["answered"] == 1.0, hybrid
    assert hybrid["top_within_threshold"] > baseline["top_within_threshold"], (hybrid, baseline)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="issue 13's hit@1 >= 0.95 is not reached (0.88 and 0.87, baseline 0.81):"
    " other libraries' one-line descriptions and names of closely related indicators"
    " (ROC/ROCP, TRIX/TEMA, TR/ATR) are ambiguous for every ranker measured;"
    " README 'Retrieval quality', BENCHMARKS.md",
)
def test_hit_at_1_reaches_the_issue_target(scored: dict[str, Any]) -> None:
    """Issue 13 asks for hit@1 >= 0.95 on the indicator-description sets."""
    assert scored["modes"]["hybrid"]["hit_at_1"] >= 0.95
