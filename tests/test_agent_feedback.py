"""The agent learns as it writes: once a delivered file is refined, its feedback in
``inbox/<agent>/feedback/`` says which items were new and which repeated an earlier
pair (exact or near, of which pair and file, how similar), which pairs scored poor and
why, and what its indicators still miss; ``FEEDBACK_INDEX.md`` lists the latest version
of every file, worst first. Everything here runs through ``inboxd run --once`` and
``inboxd refine`` on a real root with the real model, with duplicates and junk planted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import TIMEOUT, drop, query, run_cli

from benchmarks.corpus import _paraphrase, _peers, _rng, envelope, file_path, pairs_for
from daemon.core.catalog import Indicator, load_catalog
from daemon.ingest.feedback import feedback_paths

RSI_FILE = "outbox/droid/session_04/rsi_qa_pairs.json"
MACD_FILE = "outbox/droid/session_02/macd_qa_pairs.json"
MORE_FILE = "outbox/droid/session_04/rsi_more_qa_pairs.json"
BROKEN_FILE = "outbox/droid/broken_qa_pairs.json"

# A weak pair delivered first, and a better one saying the same (cosine 0.97) later:
# the later one scores higher and is kept.
WEAK_Q = "What does the Relative Strength Index measure?"
WEAK_A = (
    "The Relative Strength Index measures the speed and size of recent price changes of"
    " an asset, as an oscillator between zero and one hundred."
)
BETTER_A = (
    WEAK_A + " It uses a 14-period window by default: readings above 70 flag overbought"
    " and below 30 oversold markets."
)
JUNK = [
    {"question": "How is the RSI smoothed?", "answer": "TODO: explain the smoothing.",
     "type": "calculation", "difficulty": "expert"},
    {"question": "Should I buy when RSI is low?",
     "answer": "I'm sorry, I cannot provide financial advice on that.", "type": "signal"},
]  # fmt: skip


def _indicator(name: str) -> Indicator:
    found = load_catalog().resolve(name)
    assert found is not None
    return found


def _run(root: Path, *args: str) -> None:
    done = run_cli(root, *(args or ("run", "--once")), timeout=TIMEOUT * 3)
    assert done.returncode == 0, done.stderr[-3000:]


def _first_round(root: Path) -> list[dict[str, Any]]:
    rsi, macd = _indicator("rsi"), _indicator("macd")
    rsi_pairs = pairs_for(rsi, 8, seed=1, peers=_peers(rsi), paraphrase_rate=0)
    rsi_pairs.append(
        {"question": WEAK_Q, "answer": WEAK_A, "type": "definition", "difficulty": "beginner"}
    )
    drop(file_path(root, rsi), envelope(rsi, rsi_pairs))
    macd_pairs = pairs_for(macd, 6, seed=1, peers=_peers(macd), paraphrase_rate=0)
    drop(file_path(root, macd), envelope(macd, macd_pairs))
    return rsi_pairs


def _second_round(root: Path, rsi_pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rsi = _indicator("rsi")
    near_q, near_a = _paraphrase(_rng(3, "near"), rsi_pairs[2]["question"], rsi_pairs[2]["answer"])
    fresh = pairs_for(rsi, 3, seed=5, peers=_peers(rsi), paraphrase_rate=0, tag="more")
    items = [
        dict(rsi_pairs[0]),  # [0] the very same pair again
        {  # [1] the same text, other case and punctuation
            **rsi_pairs[1],
            "question": rsi_pairs[1]["question"].upper(),
            "answer": rsi_pairs[1]["answer"].replace(".", " ."),
        },
        {**rsi_pairs[2], "question": near_q, "answer": near_a},  # [2] reworded
        {"question": WEAK_Q, "answer": BETTER_A, "type": "definition"},  # [3] a better copy
        *JUNK,  # [4], [5]
        *fresh,  # [6], [7], [8]
        dict(fresh[0]),  # [9] repeats [6]: invalid
        {"question": "", "answer": "An answer without a question."},  # [10] invalid
    ]
    drop(root / MORE_FILE, envelope(rsi, items))
    drop(root / BROKEN_FILE, b'{"qa_pairs": [{"question": "cut off",')
    return items


def _sha(root: Path, relpath: str) -> str:
    rows = query(root, "SELECT sha256 FROM batches WHERE path = ? ORDER BY id DESC", [relpath])
    return str(rows[0][0])


def _feedback(root: Path, relpath: str, sha256: str | None = None) -> tuple[str, dict[str, Any]]:
    md, js = feedback_paths(root / "inbox", "droid", relpath, sha256 or _sha(root, relpath))
    return md.read_text(), json.loads(js.read_text())


def _pair_id(root: Path, question: str) -> int:
    return int(query(root, "SELECT id FROM pairs WHERE question = ?", [question])[0][0])


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two deliveries, each processed by ``run --once``, then a corpus run (``refine``)."""
    base = tmp_path_factory.mktemp("feedback") / "root"
    for name in ("inbox", "outbox", "state"):
        (base / name).mkdir(parents=True)
    rsi_pairs = _first_round(base)
    _run(base)
    _second_round(base, rsi_pairs)
    _run(base)
    _run(base, "refine")
    return base


def test_report_counts_new_exact_and_near_duplicates_and_names_the_earlier_pair(
    root: Path,
) -> None:
    """Each repeated item names the pair it repeats, that pair's file and position, and
    the similarity; the others count as new."""
    _, data = _feedback(root, MORE_FILE)
    report = data["report"]
    summary = report["summary"]
    assert (summary["items"], summary["valid"], summary["invalid"]) == (11, 9, 2)
    assert (summary["new"], summary["exact_duplicates"], summary["near_duplicates"]) == (5, 2, 2)
    by_position = {d["position"]: d for d in report["duplicates"]}
    assert set(by_position) == {f"qa_pairs[{i}]" for i in range(4)}
    rsi_pairs = json.loads((root / RSI_FILE).read_text())["qa_pairs"]
    for i, outcome in ((0, "exact_duplicate"), (1, "exact_duplicate"), (2, "near_duplicate")):
        found = by_position[f"qa_pairs[{i}]"]
        assert found["outcome"] == outcome
        assert found["of"] == _pair_id(root, rsi_pairs[i]["question"])
        assert (found["of_file"], found["of_position"]) == (RSI_FILE, f"qa_pairs[{i}]")
        assert found["of_question"] == rsi_pairs[i]["question"]
    assert by_position["qa_pairs[0]"]["similarity"] == 1.0
    assert 0.92 <= by_position["qa_pairs[2]"]["similarity"] < 1.0
    better = by_position["qa_pairs[3]"]
    assert better["outcome"] == "near_duplicate" and better["kept_this_one"] is True
    assert better["of"] == _pair_id(root, WEAK_Q) and better["of_position"] == "qa_pairs[8]"
    assert 0.92 <= better["similarity"] < 1.0


def test_report_lists_poor_pairs_with_sub_scores_and_red_flags(root: Path) -> None:
    """The planted placeholder and refusal are listed as poor, with the rubric's
    sub-scores and the red flag that sank each."""
    markdown, data = _feedback(root, MORE_FILE)
    poor = {p["position"]: p for p in data["report"]["poor"]}
    assert "placeholder" in poor["qa_pairs[4]"]["red_flags"]
    assert "refusal" in poor["qa_pairs[5]"]["red_flags"]
    for entry in poor.values():
        assert set(entry["subscores"]) == {"relevance", "completeness", "specificity", "structure"}
        assert entry["score"] < 60
    assert data["report"]["summary"]["tiers"]["poor"] == len(poor)
    assert "## Poor pairs" in markdown and "placeholder" in markdown
    # Validation errors stay at the top of the same file.
    assert [e["position"] for e in data["errors"]] == ["qa_pairs[9]", "qa_pairs[10]"]
    assert markdown.index("repeats an earlier pair") < markdown.index("## What the pairs added")


def test_report_gives_each_indicators_coverage_against_its_target(root: Path) -> None:
    """The indicator's active pairs against the target, and the question types and
    difficulties still missing, as the gap analysis counts them."""
    markdown, data = _feedback(root, MORE_FILE)
    (rsi,) = data["report"]["coverage"]
    gaps = json.loads((root / "state" / "reports" / "gaps.json").read_text())
    active = next(r["active"] for r in gaps["indicators_below_target"] if r["indicator"] == "rsi")
    assert (rsi["indicator"], rsi["target"], rsi["active"]) == ("rsi", 75, active)
    assert rsi["need"] == 75 - active
    assert rsi["missing_types"] == gaps["missing_question_types"].get("rsi", [])
    assert rsi["missing_difficulties"] == gaps["missing_difficulties"].get("rsi", [])
    assert f"rsi: still needs {75 - active} more pair(s)" in markdown


def test_corpus_run_rewrites_an_earlier_files_report_when_a_later_pair_replaced_one(
    root: Path,
) -> None:
    """After the corpus run, the first file's report says its weak pair is now folded
    into the better one delivered later."""
    _, data = _feedback(root, RSI_FILE)
    (replaced,) = data["report"]["duplicates"]
    assert replaced["position"] == "qa_pairs[8]" and replaced["later_kept"] is True
    assert (replaced["of_file"], replaced["of_position"]) == (MORE_FILE, "qa_pairs[3]")
    assert data["report"]["summary"]["new"] == 8


def test_index_lists_the_latest_version_of_each_file_worst_first(root: Path) -> None:
    """The rejected file first, then by the share of items that added a pair above the
    poor tier, each row linking the file's feedback."""
    lines = (root / "inbox" / "droid" / "FEEDBACK_INDEX.md").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [BROKEN_FILE, MORE_FILE, RSI_FILE, MACD_FILE]
    assert "rejected: not valid JSON" in rows[0]
    more_md, _ = feedback_paths(root / "inbox", "droid", MORE_FILE, _sha(root, MORE_FILE))
    assert f"(feedback/{more_md.name})" in rows[1]
    assert "| 3 of 11 (27%) | 5 | 2 | 2 | 2 | 2 |" in rows[1]


def test_processing_again_rewrites_nothing(root: Path) -> None:
    """Another run over the same files leaves every feedback file's bytes and mtime as
    they were, one Markdown and one JSON file per delivered version."""
    before = _snapshot(root / "inbox")
    _run(root)
    _run(root, "refine")
    assert _snapshot(root / "inbox") == before
    versions = int(query(root, "SELECT count(*) FROM batches")[0][0])
    assert len([name for name in before if name.startswith("droid/feedback/")]) == 2 * versions


def test_a_new_version_gets_its_own_report_and_replaces_the_old_one_in_the_index(
    root: Path, tmp_path: Path
) -> None:
    """Re-delivering a file with the junk removed writes feedback for the new version
    (items carried over count as unchanged), keeps the old version's, and the index
    links only the new one."""
    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    old_sha = _sha(copy, MORE_FILE)
    items = json.loads((copy / MORE_FILE).read_text())
    items["qa_pairs"] = [p for i, p in enumerate(items["qa_pairs"]) if i not in (4, 5, 9, 10)]
    drop(copy / MORE_FILE, json.dumps(items).encode())
    _run(copy)
    new_sha = _sha(copy, MORE_FILE)
    assert new_sha != old_sha
    old_md, _ = feedback_paths(copy / "inbox", "droid", MORE_FILE, old_sha)
    new_md, _ = feedback_paths(copy / "inbox", "droid", MORE_FILE, new_sha)
    assert old_md.exists() and new_md.exists()
    _, data = _feedback(copy, MORE_FILE, new_sha)
    summary = data["report"]["summary"]
    assert (summary["items"], summary["unchanged"], summary["new"], summary["invalid"]) == (
        7,
        3,
        0,
        0,
    )
    assert summary["exact_duplicates"] + summary["near_duplicates"] == 4
    index = (copy / "inbox" / "droid" / "FEEDBACK_INDEX.md").read_text()
    assert new_md.name in index and old_md.name not in index
