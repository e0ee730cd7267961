"""The local refinement stages end to end, in process, with the real all-MiniLM-L6-v2 and
the real hnswlib index: embeddings cached by text, exact and near duplicates marked
(never deleted), the best-scored pair kept, and corpus-wide re-decisions from stored
vectors when the threshold changes."""

from __future__ import annotations

import json
import shutil
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from builders import process
from conftest import query, run_cli, scalar
from structlog.testing import capture_logs

from daemon.core.config import Config, load_config
from daemon.core.logs import get_logger
from daemon.providers.embedders.local import LocalEmbedder
from daemon.providers.scorers import make_scorer
from daemon.providers.scorers.rubric import RubricScorer
from daemon.refine.corpus import load_or_rebuild_index, refine_corpus
from daemon.refine.index import META_FILE, ids_checksum
from daemon.runtime.service import Service
from daemon.runtime.wiring import build_services, open_searcher
from daemon.stages.corpus_run import run_corpus
from daemon.store import Store

AGENT = "quant"

# The RSI calculation question, as first delivered ...
RSI_CALC = {
    "question": "How is the Relative Strength Index (RSI) calculated?",
    "answer": "The RSI compares the average gain with the average loss over N periods, usually"
    " 14: RS = average gain / average loss and RSI = 100 - 100 / (1 + RS). On a daily BTC"
    " chart the 14-day RSI moves between 0 and 100.",
}
# ... the same text with case, whitespace and punctuation changed (an exact duplicate) ...
RSI_CALC_EXACT = {
    "question": "how is the relative strength index  (rsi) calculated",
    "answer": "the rsi compares the average gain with the average loss over n periods usually"
    " 14 rs = average gain / average loss and rsi = 100 - 100 / (1 + rs) on a daily btc"
    "  chart the 14-day rsi moves between 0 and 100",
}
# ... the question and answer said in other words (a near duplicate, cosine ~0.97) ...
RSI_CALC_PARAPHRASE = {
    "question": "How do you compute the RSI (Relative Strength Index)?",
    "answer": "The RSI compares average gains with average losses over N periods, typically"
    " 14: RS = avg gain / avg loss, and RSI = 100 - 100 / (1 + RS). On a daily Bitcoin chart"
    " the 14-day RSI ranges from 0 to 100.",
}
# ... the paraphrase again, badly typed: lower case, no punctuation (scores lower) ...
RSI_CALC_PARAPHRASE_SLOPPY = {
    "question": "how do you compute the rsi relative strength index",
    "answer": "the rsi compares average gains with average losses over n periods typically 14"
    " rs = avg gain / avg loss and rsi = 100 - 100 / (1 + rs) on a daily bitcoin chart the"
    " 14-day rsi ranges from 0 to 100",
}
# ... and a shorter answer to much the same question (cosine ~0.84: related, not the same).
RSI_CALC_LOOSE = {
    "question": "How is RSI computed on a crypto chart?",
    "answer": "Divide the average gain by the average loss over the look-back window to get RS,"
    " then RSI = 100 - 100 / (1 + RS).",
}
# Two different questions on the same indicator (cosine ~0.5-0.6 with the above).
RSI_LEVELS = {
    "question": "What RSI levels signal overbought and oversold conditions for Bitcoin?",
    "answer": "Readings above 70 are usually called overbought and readings below 30 oversold."
    " In strong crypto trends the RSI can stay above 70 for weeks, so many traders wait for"
    " it to cross back below 70 before acting.",
}
RSI_DIVERGENCE = {
    "question": "What is RSI divergence and how do traders use it?",
    "answer": "A bearish divergence forms when price makes a higher high while the RSI makes a"
    " lower high; a bullish one is the mirror image. It warns that momentum is fading, but on"
    " crypto charts divergences can persist for many candles before price turns.",
}


# -- helpers ------------------------------------------------------------------------------


# The real all-MiniLM-L6-v2 (conftest.model), loaded before the first test.
pytestmark = pytest.mark.usefixtures("model")


def deliver(root: Path, name: str, pairs: list[dict[str, Any]], indent: int = 2) -> Path:
    """A Q&A file in the agent's outbox, written under a temp name and renamed into place."""
    path = root / "outbox" / AGENT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.part")
    temp.write_text(json.dumps(pairs, indent=indent))
    temp.rename(path)
    return path


def settings(root: Path, **sections: dict[str, Any]) -> Config:
    """The root's config with no settle window (tests drive the service themselves)."""
    return load_config(
        root, overrides={"watch": {"settle_seconds": 0.0, "poll_seconds": 0.01}, **sections}
    )


def pair_id(root: Path, question: str) -> int:
    found = scalar(root, "SELECT id FROM pairs WHERE question = ?", [question])
    assert found is not None, f"no pair asks {question!r}"
    return int(found)


def duplicates(root: Path) -> dict[int, tuple[int, str, float]]:
    """pair id -> (the pair it duplicates, method, similarity)."""
    return {
        pid: (of, method, similarity)
        for pid, of, method, similarity in query(
            root, "SELECT pair_id, duplicate_of, method, similarity FROM duplicates"
        )
    }


def embeddings(root: Path) -> int:
    return int(scalar(root, "SELECT count(*) FROM embeddings"))


def details(root: Path, to_state: str) -> list[dict[str, Any]]:
    """The detail of every transition into ``to_state``, oldest first."""
    return [
        json.loads(detail)
        for (detail,) in query(
            root, "SELECT detail FROM transitions WHERE to_state = ? ORDER BY id", [to_state]
        )
    ]


def index_meta(root: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((root / "state" / "index" / META_FILE).read_text())
    return meta


def assert_index_holds(root: Path, ids: set[int]) -> None:
    """The saved index holds exactly ``ids`` (by its metadata's checksum of the labels)."""
    meta = index_meta(root)
    assert meta["count"] == len(ids)
    assert meta["ids_sha256"] == ids_checksum(sorted(ids))


# -- duplicates ---------------------------------------------------------------------------


def test_exact_and_paraphrased_duplicates_point_at_the_original_and_other_questions_do_not(
    root: Path,
) -> None:
    """An exact duplicate (case, spaces, punctuation) and a paraphrase are marked as
    duplicates of the pair they repeat; two other questions on RSI stay apart."""
    config = settings(root)
    deliver(root, "rsi_qa_pairs.json", [RSI_CALC, RSI_LEVELS, RSI_DIVERGENCE])
    process(config)
    deliver(root, "rsi_more_qa_pairs.json", [RSI_CALC_EXACT, RSI_CALC_PARAPHRASE])
    process(config)

    original, levels, divergence = (
        pair_id(root, p["question"]) for p in (RSI_CALC, RSI_LEVELS, RSI_DIVERGENCE)
    )
    exact = pair_id(root, RSI_CALC_EXACT["question"])
    paraphrase = pair_id(root, RSI_CALC_PARAPHRASE["question"])
    found = duplicates(root)
    assert set(found) == {exact, paraphrase}
    assert found[exact][:2] == (original, "exact")
    assert found[exact][2] == pytest.approx(1.0)
    assert found[paraphrase][:2] == (original, "near")
    assert config.dedup.threshold <= found[paraphrase][2] < 1.0
    assert scalar(root, "SELECT count(*) FROM pairs") == 5  # marked, never deleted
    assert details(root, "deduplicated")[-1]["duplicates"] == 2
    assert_index_holds(root, {original, levels, divergence})


@pytest.mark.parametrize(
    ("worse", "method"),
    [(RSI_CALC_EXACT, "exact"), (RSI_CALC_PARAPHRASE_SLOPPY, "near")],
    ids=["exact", "near"],
)
def test_a_better_scored_duplicate_becomes_the_kept_pair_and_the_only_one_indexed(
    root: Path, worse: dict[str, str], method: str
) -> None:
    """When a duplicate scores better than the pair it repeats, it becomes the kept pair
    of the cluster: the old one points at it (same method) and leaves the index."""
    config = settings(root)
    deliver(root, "rsi_qa_pairs.json", [worse, RSI_LEVELS])
    process(config)
    first = pair_id(root, worse["question"])
    levels = pair_id(root, RSI_LEVELS["question"])
    assert_index_holds(root, {first, levels})

    deliver(root, "rsi_fixed_qa_pairs.json", [RSI_CALC])
    process(config)

    better = pair_id(root, RSI_CALC["question"])
    scores = dict(
        query(root, "SELECT p.id, s.score FROM pairs p JOIN scores s ON s.pair_hash = p.hash")
    )
    assert scores[better] > scores[first]
    found = duplicates(root)
    assert set(found) == {first}
    assert found[first][:2] == (better, method)
    assert details(root, "scored")[-1]["keepers_changed"] == 1
    assert_index_holds(root, {better, levels})


def test_a_duplicate_of_a_pair_only_an_old_file_version_delivered_stays_in_the_corpus(
    root: Path,
) -> None:
    """A new version of a file that retypes a pair (case, punctuation) keeps that pair
    active and indexed: it is not folded into the superseded version's copy."""
    config = settings(root)
    deliver(root, "rsi_qa_pairs.json", [RSI_CALC, RSI_LEVELS])
    process(config)
    deliver(root, "rsi_qa_pairs.json", [RSI_CALC_EXACT, RSI_LEVELS])  # version 2
    process(config)

    retyped = pair_id(root, RSI_CALC_EXACT["question"])
    levels = pair_id(root, RSI_LEVELS["question"])
    assert retyped not in duplicates(root)
    assert_index_holds(root, {retyped, levels})

    _refine(config)
    assert retyped not in duplicates(root)
    assert_index_holds(root, {retyped, levels})


# -- nothing is embedded twice --------------------------------------------------------------


def test_redropped_renamed_or_reformatted_files_embed_nothing_again(root: Path) -> None:
    """The same pairs arriving again (same bytes, a new name, re-indented JSON) are not
    embedded again: the embeddings table does not grow and each new batch embeds 0."""
    config = settings(root)
    path = deliver(root, "rsi_qa_pairs.json", [RSI_CALC, RSI_LEVELS, RSI_DIVERGENCE])
    process(config)
    count = embeddings(root)
    assert count == 6
    assert details(root, "embedded") == [
        {"texts": 6, "embedded": 6, "model": "local/all-MiniLM-L6-v2"}
    ]

    data = path.read_bytes()  # the same bytes written again: not a new version
    path.unlink()
    path.write_bytes(data)
    process(config)
    assert scalar(root, "SELECT count(*) FROM batches") == 1

    path.rename(path.with_name("rsi_v2_qa_pairs.json"))  # a new name: a new batch
    process(config)
    deliver(root, "rsi_v2_qa_pairs.json", [RSI_CALC, RSI_LEVELS, RSI_DIVERGENCE], indent=4)
    process(config)  # a new version of that file: same pairs, new bytes

    assert scalar(root, "SELECT count(*) FROM batches") == 3
    assert embeddings(root) == count
    assert [d["embedded"] for d in details(root, "embedded")] == [6, 0, 0]
    assert [d["scored"] for d in details(root, "scored")] == [3, 0, 0]
    assert scalar(root, "SELECT count(*) FROM batches WHERE state = 'indexed'") == 2


def test_restarting_the_service_embeds_nothing_and_loads_the_saved_index(root: Path) -> None:
    """A restart over a processed root embeds and scores nothing, writes no transition
    and loads the saved index instead of rebuilding it."""
    config = settings(root)
    deliver(root, "rsi_qa_pairs.json", [RSI_CALC, RSI_LEVELS])
    deliver(root, "rsi_more_qa_pairs.json", [RSI_CALC_PARAPHRASE])
    process(config)
    before = (
        embeddings(root),
        scalar(root, "SELECT count(*) FROM transitions"),
        scalar(root, "SELECT count(*) FROM scores"),
    )

    with capture_logs() as logs:
        process(config)

    after = (
        embeddings(root),
        scalar(root, "SELECT count(*) FROM transitions"),
        scalar(root, "SELECT count(*) FROM scores"),
    )
    assert after == before
    events = [entry["event"] for entry in logs]
    assert "index.loaded" in events
    assert "index.rebuilt" not in events


# -- the corpus-wide re-run -----------------------------------------------------------------


def _rsi_cluster(root: Path) -> dict[str, int]:
    """Deliver the RSI calculation, an exact copy, a paraphrase, a loose variant and an
    unrelated RSI question; process them at the default threshold."""
    deliver(root, "rsi_qa_pairs.json", [RSI_CALC, RSI_LEVELS])
    deliver(root, "rsi_more_qa_pairs.json", [RSI_CALC_EXACT, RSI_CALC_PARAPHRASE, RSI_CALC_LOOSE])
    process(settings(root))
    names = {
        "calc": RSI_CALC,
        "levels": RSI_LEVELS,
        "exact": RSI_CALC_EXACT,
        "paraphrase": RSI_CALC_PARAPHRASE,
        "loose": RSI_CALC_LOOSE,
    }
    return {name: pair_id(root, pair["question"]) for name, pair in names.items()}


def _refine(config: Config) -> dict[str, int]:
    store = Store(config.db_path)
    try:
        index = load_or_rebuild_index(store, LocalEmbedder(), config.index_dir, get_logger())
        return refine_corpus(
            store,
            index,
            scorer=make_scorer(config).name,
            threshold=config.dedup.threshold,
            neighbours=config.dedup.neighbours,
            index_dir=config.index_dir,
            log=get_logger(),
            now=time.time(),
        )
    finally:
        store.close()


def test_changing_the_threshold_redecides_duplicates_from_stored_vectors(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """refine_corpus with the threshold from INBOXD_DEDUP__THRESHOLD re-decides every
    duplicate without embedding: at 0.99 only the exact copy is one, at 0.80 the loose
    variant joins the cluster, and the unrelated question never does."""
    ids = _rsi_cluster(root)
    count = embeddings(root)
    assert {p: of for p, (of, _, _) in duplicates(root).items()} == {
        ids["exact"]: ids["calc"],
        ids["paraphrase"]: ids["calc"],
    }

    monkeypatch.setenv("INBOXD_DEDUP__THRESHOLD", "0.99")
    strict = settings(root)
    assert strict.dedup.threshold == 0.99
    with capture_logs() as logs:
        summary = _refine(strict)
    assert {p: (of, m) for p, (of, m, _) in duplicates(root).items()} == {
        ids["exact"]: (ids["calc"], "exact")
    }
    assert summary["duplicates"] == 1
    assert [e["threshold"] for e in logs if e["event"] == "dedup.decided"] == [0.99]
    assert_index_holds(root, {ids["calc"], ids["levels"], ids["paraphrase"], ids["loose"]})

    monkeypatch.setenv("INBOXD_DEDUP__THRESHOLD", "0.80")
    summary = _refine(settings(root))
    found = duplicates(root)
    assert {p: of for p, (of, _, _) in found.items()} == {
        ids["exact"]: ids["calc"],
        ids["paraphrase"]: ids["calc"],
        ids["loose"]: ids["calc"],
    }
    assert found[ids["loose"]][1] == "near"
    assert 0.80 <= found[ids["loose"]][2] < 0.92
    assert summary == {
        "pairs": 5,
        "duplicates": 3,
        "clusters": 1,
        "index_added": 0,
        "index_removed": 2,
        "index_size": 2,
    }
    assert_index_holds(root, {ids["calc"], ids["levels"]})
    assert embeddings(root) == count


def test_inboxd_refine_applies_a_new_threshold_without_embedding(root: Path) -> None:
    """``inboxd refine`` with INBOXD_DEDUP__THRESHOLD=0.99 re-decides duplicates from the
    stored vectors and prints the refinement status as JSON."""
    ids = _rsi_cluster(root)
    count = embeddings(root)

    result = run_cli(root, "refine", INBOXD_DEDUP__THRESHOLD="0.99")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["embeddings"] == count
    assert report["duplicates"] == 1
    assert report["index_size"] == 4
    assert {p: of for p, (of, _, _) in duplicates(root).items()} == {ids["exact"]: ids["calc"]}
    assert embeddings(root) == count

    status = run_cli(root, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["refinement"] == report


def test_search_finds_the_kept_pair_of_a_cluster_only(root: Path) -> None:
    """Search returns the kept pair of a duplicate cluster, never its duplicates."""
    ids = _rsi_cluster(root)
    searcher = open_searcher(settings(root), get_logger())
    try:
        hits = searcher.search("how do I calculate the relative strength index", k=5)
    finally:
        searcher.store.close()
    found = [hit.pair_id for hit in hits]
    assert found[0] == ids["calc"]
    assert not {ids["exact"], ids["paraphrase"]} & set(found)


def test_a_pair_a_new_file_version_drops_leaves_the_saved_index(root: Path) -> None:
    """A new version of a file without one of its pairs takes that pair out of the saved
    index at once, so the next start loads the index instead of rebuilding it."""
    config = settings(root)
    deliver(root, "rsi_qa_pairs.json", [RSI_CALC, RSI_LEVELS, RSI_DIVERGENCE])
    process(config)
    deliver(root, "rsi_qa_pairs.json", [RSI_LEVELS, RSI_DIVERGENCE])  # version 2
    process(config)

    kept = {pair_id(root, p["question"]) for p in (RSI_LEVELS, RSI_DIVERGENCE)}
    assert_index_holds(root, kept)
    with capture_logs() as logs:
        process(config)
    assert [e["count"] for e in logs if e["event"] == "index.loaded"] == [2]


def test_a_new_rubric_version_rescores_on_the_next_corpus_run_and_nothing_else(
    root: Path,
) -> None:
    """Scores are keyed by scorer name and version: after a version change the corpus
    run scores every active pair under the new name, embeds nothing, and a second run
    scores nothing more."""

    class NextRubric(RubricScorer):
        name = RubricScorer.name + "-next"

    ids = _rsi_cluster(root)
    count = embeddings(root)
    old_name = RubricScorer.name
    config = settings(root)
    sql = "SELECT pair_hash, created_at FROM scores WHERE scorer = ? ORDER BY pair_hash"
    written = []
    for _ in range(2):
        # The daemon's own seam for its parts: the services factory, given the scorer.
        service = Service(config, services=partial(build_services, scorer=NextRubric()))
        service.start(watch=False)
        try:
            run_corpus(service.worker_services(), time.time())
        finally:
            service.stop()
        written.append(query(root, sql, [old_name + "-next"]))
    active = {ids["calc"], ids["levels"], ids["loose"]}
    assert len(written[0]) == len(active)
    assert written[1] == written[0]  # the second run wrote no score again
    assert embeddings(root) == count


def test_a_failing_after_run_hook_is_logged_and_the_others_still_run(root: Path) -> None:
    """The reports cannot be written (state/reports is a file): the corpus run logs
    corpus.hook_failed for that hook, returns, and the automatic export still happens."""
    _rsi_cluster(root)
    (root / "state" / "reports").write_text("in the way")
    service = Service(settings(root))
    service.start(watch=False)
    try:
        with capture_logs() as logs:
            run_corpus(service.worker_services(), time.time())
    finally:
        service.stop()
    failed = [e for e in logs if e["event"] == "corpus.hook_failed"]
    assert [e["hook"] for e in failed] == ["after_corpus_run"]
    assert [e["event"] for e in logs if e["event"] == "export.written"] == ["export.written"]


def test_a_failing_corpus_run_is_logged_and_the_daemon_goes_on(root: Path) -> None:
    """The index cannot be saved (state/index is a file): the corpus run that
    ALL_SESSIONS_COMPLETE.txt asked for fails, is logged as corpus.work_failed, its
    signal is marked handled (no retry every tick), and the worker keeps working."""
    _rsi_cluster(root)
    service = Service(settings(root))
    service.start(watch=False)
    worker = service.worker
    assert worker is not None
    try:
        index_dir = root / "state" / "index"
        shutil.rmtree(index_dir)
        index_dir.write_text("in the way")
        store = worker.ctx.store
        store.record_signal(
            kind="all_sessions_complete", agent=AGENT, path="x", sha256="0" * 64, body="", now=1.0
        )
        with capture_logs() as logs:
            assert worker.corpus_work(time.time()) is True
        assert store.unhandled_signals("all_sessions_complete") == []
        assert worker.corpus_work(time.time()) is False
    finally:
        service.stop()
    (failure,) = [e for e in logs if e["event"] == "corpus.work_failed"]
    assert failure["work"] == "corpus run"
