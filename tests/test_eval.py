"""Retrieval evaluation of the refined index against the unrefined baseline, on a corpus
with planted near-copies and junk: the metrics, the verdict and its rule, the reports
(eval.json for the success report, eval.md, the PNG chart), user query files, and that
only the queries are embedded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rag_corpus
from conftest import query, run_cli

from daemon.core.catalog import load_catalog
from daemon.core.logs import get_logger
from daemon.rag.evaluation import evaluate
from daemon.rag.evaluation.metrics import sign_test
from daemon.rag.evaluation.queries import QueryFileError, builtin_queries, load_user_queries
from daemon.runtime.wiring import reading

# The real all-MiniLM-L6-v2 (conftest.model), loaded before the first test.
pytestmark = pytest.mark.usefixtures("model")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, rag_template: Path) -> Path:
    """A private copy of the refined RAG corpus."""
    return rag_corpus.copy_of(rag_template, tmp_path_factory.mktemp("eval"))


@pytest.fixture(scope="module")
def user_queries(root: Path) -> Path:
    rsi_pair = query(root, "SELECT id FROM pairs WHERE indicator = 'rsi' ORDER BY id LIMIT 1")
    return rag_corpus.write_jsonl(
        root / "queries.jsonl",
        [
            {"query": "how overbought is bitcoin on the momentum oscillator", "indicator": "RSI"},
            {"query": "signal line crossover of the MACD", "indicator": "macd"},
            {"query": "SOPR below one", "indicator": "Spent Output Profit Ratio"},
            {"query": "How is the RSI computed?", "pair_ids": [rsi_pair[0][0]]},
        ],
    )


@pytest.fixture(scope="module")
def report(root: Path, user_queries: Path) -> dict[str, Any]:
    with reading(rag_corpus.settings(root), get_logger()) as services:
        found, _ = evaluate(services, queries_path=user_queries)
    return found


def test_refined_index_beats_the_baseline_on_hit_at_5_and_redundancy(
    report: dict[str, Any],
) -> None:
    """With planted copies and junk, the refined side finds more right indicators in the
    top 5 and has fewer near-duplicates there; the verdict says so, significantly."""
    refined, baseline = report["refined"], report["baseline"]
    assert refined["hit_at_5"] > baseline["hit_at_5"]
    assert refined["redundancy"] < baseline["redundancy"]
    assert baseline["redundancy"] > 0.1  # the planted copies crowd the baseline's top 5
    assert refined["pairs"] < baseline["pairs"]
    assert report["improved"] is True
    assert report["significantly_improved"] is True
    assert report["significance"]["redundancy"]["p"] < 0.05


def test_summary_sentence_carries_the_numbers_of_both_sides(report: dict[str, Any]) -> None:
    """The one-sentence summary (read by the success report) quotes hit@5 and
    redundancy of both sides."""
    summary = report["summary"]
    r, b = report["refined"], report["baseline"]
    assert f"hit@5 {r['hit_at_5']:.3f} vs {b['hit_at_5']:.3f}" in summary
    assert f"redundancy {r['redundancy']:.3f} vs {b['redundancy']:.3f}" in summary
    assert summary.endswith("improved (significant).")


def test_every_metric_is_reported_for_both_sides(report: dict[str, Any]) -> None:
    """hit@1, hit@5, MRR@10, nDCG@10, the threshold share and its precision, and
    redundancy, all within 0..1, for the refined side and the baseline."""
    keys = {
        "hit_at_1",
        "hit_at_5",
        "mrr_at_10",
        "ndcg_at_10",
        "top_within_threshold",
        "precision_within_threshold",
        "redundancy",
    }
    for side in (report["refined"], report["baseline"]):
        assert keys <= set(side)
        assert all(0.0 <= side[k] <= 1.0 for k in keys)
        assert side["hit_at_1"] <= side["hit_at_5"]
    assert report["queries"]["user"] == 4
    assert report["queries"]["builtin"] > 40


def test_reports_are_written_for_the_success_report_and_for_people(
    root: Path, user_queries: Path
) -> None:
    """`inboxd eval` writes eval.json with at/improved/significantly_improved/summary/
    refined/baseline, eval.md with the table, and a PNG chart."""
    result = run_cli(root, "eval", "--queries", str(user_queries))
    assert result.returncode == 0, result.stderr
    reports = root / "state" / "reports"
    data = json.loads((reports / "eval.json").read_text())
    assert {"at", "improved", "significantly_improved", "summary", "refined", "baseline"} <= set(
        data
    )
    assert isinstance(data["improved"], bool)
    assert data["summary"] in result.stdout
    markdown = (reports / "eval.md").read_text()
    assert "| hit@5 |" in markdown and "eval_distances.png" in markdown
    chart = (reports / "eval_distances.png").read_bytes()
    assert chart.startswith(b"\x89PNG\r\n\x1a\n") and len(chart) > 10_000


def test_only_the_queries_are_embedded_and_the_db_is_left_alone(
    root: Path, report: dict[str, Any], user_queries: Path
) -> None:
    """The corpus comes from stored vectors: a run embeds exactly its queries and writes
    no embedding (the DB is opened read-only)."""
    assert report["embedded_texts"] == report["queries"]["count"]
    assert report["pairs_without_vectors"] == 0
    before = query(root, "SELECT count(*), max(rowid) FROM embeddings")
    with reading(rag_corpus.settings(root), get_logger()) as services:
        again, _ = evaluate(services, builtin=False, queries_path=user_queries)
    assert again["embedded_texts"] == again["queries"]["count"] == 4
    assert query(root, "SELECT count(*), max(rowid) FROM embeddings") == before


def test_builtin_queries_cover_names_abbreviations_and_questions_of_present_indicators() -> None:
    """The built-in set has, per indicator with pairs, its name, its abbreviation and
    typical questions; indicators without pairs get none."""
    found = builtin_queries(load_catalog(), {"rsi", "mvrv_ratio"})
    texts = {q.text for q in found}
    assert {"Relative Strength Index", "RSI", "MVRV Ratio", "MVRV"} <= texts
    assert "How is the Relative Strength Index calculated?" in texts
    assert {i for q in found for i in q.indicators} == {"rsi", "mvrv_ratio"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "line 2: not JSON"),
        ('{"indicator": "rsi"}', 'line 2: needs an object with a non-empty "query"'),
        ('{"query": "what is it"}', 'line 2: give an expected "indicator" and/or "pair_ids"'),
        ('{"query": "x", "pair_ids": ["a"]}', 'line 2: "pair_ids" must be a list of integers'),
    ],
)
def test_a_bad_user_query_line_is_refused_with_its_line_number(
    tmp_path: Path, line: str, reason: str
) -> None:
    """A user query file with a bad line stops the evaluation with file, line, reason."""
    path = tmp_path / "q.jsonl"
    path.write_text('{"query": "RSI", "indicator": "rsi"}\n' + line + "\n")
    with pytest.raises(QueryFileError, match=reason):
        load_user_queries(path, load_catalog())


def test_cli_reports_a_bad_query_file_as_an_operator_error(root: Path, tmp_path: Path) -> None:
    """`inboxd eval --queries` with a bad file exits 1 with the reason, no traceback."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "RSI"}\n')
    result = run_cli(root, "eval", "--queries", str(bad), "--no-builtin")
    assert result.returncode == 1
    assert 'line 1: give an expected "indicator"' in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("wins", "losses", "p"),
    [(0, 0, 1.0), (5, 5, 1.0), (10, 0, 2 / 1024), (9, 1, 22 / 1024)],
)
def test_sign_test_gives_the_exact_two_sided_p_value(wins: int, losses: int, p: float) -> None:
    """The significance rule's sign test matches the binomial tail by hand."""
    assert sign_test(wins, losses) == pytest.approx(p)
