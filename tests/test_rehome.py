"""Clusters re-home: when the kept pair of a duplicate cluster leaves the corpus (every
version of a file that delivered it is superseded), the best-scored live member becomes
the kept pair in the transaction that supersedes the old version, so a duplicate that
another file still delivers never leaves the index, search or export."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import process
from conftest import Daemon, query, run_cli
from structlog.testing import capture_logs
from test_refinement import (
    RSI_CALC,
    RSI_CALC_EXACT,
    RSI_CALC_PARAPHRASE,
    RSI_CALC_PARAPHRASE_SLOPPY,
    RSI_DIVERGENCE,
    RSI_LEVELS,
    assert_index_holds,
    deliver,
    duplicates,
    pair_id,
    settings,
)

from daemon.core.errors import PermanentError
from daemon.providers.embedders.local import LocalEmbedder
from daemon.providers.scorers import make_scorer
from daemon.refine.rehome import rehome
from daemon.store import Store

# The real all-MiniLM-L6-v2 (conftest.model), loaded before the first test.
pytestmark = pytest.mark.usefixtures("model")

F1, F2, F3 = "rsi_qa_pairs.json", "rsi_more_qa_pairs.json", "rsi_extra_qa_pairs.json"


def ids(root: Path, *pairs: dict[str, str]) -> list[int]:
    return [pair_id(root, p["question"]) for p in pairs]


def states(root: Path) -> list[str]:
    return [state for (state,) in query(root, "SELECT state FROM batches ORDER BY id")]


def scores(root: Path) -> dict[int, float]:
    """Pair id -> its score (one scorer in these roots)."""
    return dict(
        query(root, "SELECT p.id, s.score FROM pairs p JOIN scores s ON s.pair_hash = p.hash")
    )


def detected_detail(root: Path, name: str) -> dict[str, Any]:
    """The detail of the ``detected`` row of the newest version of outbox/quant/<name>."""
    (detail,) = query(
        root,
        "SELECT t.detail FROM transitions t JOIN batches b ON b.id = t.batch_id"
        " WHERE b.path = ? AND t.to_state = 'detected' ORDER BY t.id DESC LIMIT 1",
        [f"outbox/quant/{name}"],
    )[0]
    result: dict[str, Any] = json.loads(detail)
    return result


def similarity(embedder: LocalEmbedder, a: dict[str, str], b: dict[str, str]) -> float:
    """Cosine similarity of two pairs' vectors, embedded afresh (not read from the DB)."""

    def vector(pair: dict[str, str]) -> Any:
        both = embedder.embed_documents([pair["question"], pair["answer"]])
        summed = both[0] + both[1]
        return summed / np.linalg.norm(summed)

    return float(vector(a) @ vector(b))


def calc_and_paraphrase(root: Path) -> tuple[int, int, int]:
    """f1 delivers the RSI calculation (kept) and RSI levels; f2 a paraphrase of the
    calculation, folded into it. Returns (kept, paraphrase, levels)."""
    deliver(root, F1, [RSI_CALC, RSI_LEVELS])
    deliver(root, F2, [RSI_CALC_PARAPHRASE])
    process(settings(root))
    kept, paraphrase, levels = ids(root, RSI_CALC, RSI_CALC_PARAPHRASE, RSI_LEVELS)
    assert {p: of for p, (of, _, _) in duplicates(root).items()} == {paraphrase: kept}
    return kept, paraphrase, levels


# -- the daemon, end to end ---------------------------------------------------------------


@pytest.mark.slow
def test_a_duplicate_whose_kept_pair_a_new_version_drops_stays_in_search_and_export(
    root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """A running daemon: f1's new version drops the kept pair A; B, which f2 still
    delivers, becomes the kept pair, the daemon's own index holds it once the new
    version is indexed (``inboxd search --mode dense`` through the daemon finds it),
    and ``inboxd export`` holds it, with no ``inboxd refine`` run."""
    daemon = make_daemon(root).start()
    deliver(root, F1, [RSI_CALC, RSI_LEVELS])
    deliver(root, F2, [RSI_CALC_PARAPHRASE])
    daemon.wait_until(lambda: states(root) == ["indexed", "indexed"], what="f1 and f2 indexed")
    kept, paraphrase, levels = ids(root, RSI_CALC, RSI_CALC_PARAPHRASE, RSI_LEVELS)
    assert {p: of for p, (of, _, _) in duplicates(root).items()} == {paraphrase: kept}

    deliver(root, F1, [RSI_LEVELS])  # version 2, without the kept pair
    daemon.wait_until(
        lambda: sorted(states(root)) == ["indexed", "indexed", "superseded"],
        what="f1's second version indexed",
    )
    assert {p: of for p, (of, _, _) in duplicates(root).items()} == {kept: paraphrase}

    found = run_cli(
        root, "search", "How do you compute the RSI?", "--mode", "dense", "-k", "3", "--json"
    )
    assert found.returncode == 0, found.stderr
    hits = [hit["pair_id"] for hit in json.loads(found.stdout)]
    assert hits[0] == paraphrase
    assert kept not in hits
    daemon.wait_until(lambda: daemon.events("search.served"), what="the daemon answered")

    exported = run_cli(root, "export", "--json")
    assert exported.returncode == 0, exported.stderr
    folder = Path(json.loads(exported.stdout)["path"])
    lines = (folder / "knowledge_base.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert sorted(r["id"] for r in records) == sorted([paraphrase, levels])

    assert daemon.terminate() == 0
    assert_index_holds(root, {paraphrase, levels})


# -- in process ---------------------------------------------------------------------------


def test_a_cluster_of_three_moves_to_its_best_scored_live_member(
    root: Path, model: LocalEmbedder
) -> None:
    """Kept pair A with a paraphrase P (f2) and an exact copy E (f3): f1 drops A, the
    better-scored of P and E (ties: lower id) becomes the kept pair in the supersede's
    own transaction, the other live member and A point at it with their similarity
    recomputed, and the index holds it after the new version's own run."""
    config = settings(root)
    deliver(root, F1, [RSI_CALC, RSI_LEVELS])
    deliver(root, F2, [RSI_CALC_PARAPHRASE])
    deliver(root, F3, [RSI_CALC_EXACT])
    process(config)
    kept, paraphrase, exact, levels = ids(
        root, RSI_CALC, RSI_CALC_PARAPHRASE, RSI_CALC_EXACT, RSI_LEVELS
    )
    assert {p: (of, m) for p, (of, m, _) in duplicates(root).items()} == {
        paraphrase: (kept, "near"),
        exact: (kept, "exact"),
    }

    deliver(root, F1, [RSI_LEVELS])  # version 2, without A
    with capture_logs() as logs:
        process(config)
    rehomed = [e for e in logs if e["event"] == "clusters.rehomed"]

    score = scores(root)
    new = max((paraphrase, exact), key=lambda i: (score[i], -i))
    other = exact if new == paraphrase else paraphrase
    by_text = {paraphrase: RSI_CALC_PARAPHRASE, exact: RSI_CALC_EXACT, kept: RSI_CALC}
    found = duplicates(root)
    assert set(found) == {kept, other}
    for member in (kept, other):
        of, method, sim = found[member]
        assert (of, method) == (new, "exact" if {member, new} == {kept, exact} else "near")
        assert sim == pytest.approx(similarity(model, by_text[member], by_text[new]), abs=1e-4)
    assert detected_detail(root, F1)["rehomed"] == {str(kept): new}
    assert [e["rehomed"] for e in rehomed] == [{str(kept): new}]  # and the operator sees it
    assert_index_holds(root, {new, levels})

    # A later paraphrase joins the cluster: the dead A is never kept again, whatever
    # it scores; the best-scored live member is.
    deliver(root, "rsi_sloppy_qa_pairs.json", [RSI_CALC_PARAPHRASE_SLOPPY])
    process(config)
    (sloppy,) = ids(root, RSI_CALC_PARAPHRASE_SLOPPY)
    score = scores(root)
    assert score[kept] > max(score[i] for i in (paraphrase, exact, sloppy))
    best = max((paraphrase, exact, sloppy), key=lambda i: (score[i], -i))
    assert {p: of for p, (of, _, _) in duplicates(root).items()} == {
        i: best for i in (kept, paraphrase, exact, sloppy) if i != best
    }
    assert_index_holds(root, {best, levels})


def test_a_kept_pair_its_changed_file_still_delivers_stays_kept(root: Path) -> None:
    """f1's new version drops another pair but still delivers the kept pair A: once the
    new version is processed A is still kept, the paraphrase still points at it with the
    same similarity, and the index holds A, not the paraphrase."""
    config = settings(root)
    kept, paraphrase, _ = calc_and_paraphrase(root)
    before = duplicates(root)[paraphrase]

    deliver(root, F1, [RSI_CALC, RSI_DIVERGENCE])  # version 2, still with A
    process(config)

    (divergence,) = ids(root, RSI_DIVERGENCE)
    after = duplicates(root)
    assert set(after) == {paraphrase}
    assert after[paraphrase][:2] == (kept, "near")
    assert after[paraphrase][2] == pytest.approx(before[2], abs=1e-4)
    assert_index_holds(root, {kept, divergence})


def test_a_kept_pair_another_live_file_delivers_is_not_rehomed(root: Path) -> None:
    """The kept pair A also comes from f3: f1's new version without A leaves A live, so
    nothing re-homes and the index still holds A, not its paraphrase."""
    config = settings(root)
    deliver(root, F3, [RSI_CALC])
    kept, paraphrase, _ = calc_and_paraphrase(root)

    deliver(root, F1, [RSI_DIVERGENCE])
    process(config)

    (divergence,) = ids(root, RSI_DIVERGENCE)
    assert {p: of for p, (of, _, _) in duplicates(root).items()} == {paraphrase: kept}
    assert "rehomed" not in detected_detail(root, F1)
    assert_index_holds(root, {kept, divergence})


def test_a_rejected_new_version_still_brings_the_index_in_step(root: Path) -> None:
    """f1's new version cannot be read at all (rejected, never embedded): it still
    supersedes the old one, the paraphrase becomes the kept pair, and the rejection
    brings the saved index in step (the paraphrase in, f1's old pairs out)."""
    config = settings(root)
    kept, paraphrase, _ = calc_and_paraphrase(root)

    path = root / "outbox" / "quant" / F1
    path.write_text('[{"question": "truncated')
    process(config)

    assert query(
        root, "SELECT state FROM batches WHERE path = ? ORDER BY id", [f"outbox/quant/{F1}"]
    ) == [("superseded",), ("rejected",)]
    assert {p: of for p, (of, _, _) in duplicates(root).items()} == {kept: paraphrase}
    assert_index_holds(root, {paraphrase})


def test_the_supersede_rolls_back_whole_when_rehoming_fails(
    root: Path, model: LocalEmbedder
) -> None:
    """Re-homing bound to a model whose vectors are not stored fails: create_batch
    raises an operator-readable error and leaves no trace (no new batch, the old one
    not superseded, no transition, duplicates unchanged); with the stored model the
    same call then supersedes and re-homes."""
    config = settings(root)
    kept, paraphrase, _ = calc_and_paraphrase(root)
    tables = ("batches", "transitions", "duplicates")

    def snapshot() -> list[list[tuple[Any, ...]]]:
        return [query(root, f"SELECT * FROM {table} ORDER BY 1") for table in tables]

    before = snapshot()
    store = Store(config.db_path)
    bound = partial(rehome, scorer=make_scorer(config).name, threshold=config.dedup.threshold)
    new_version = {
        "agent": "quant",
        "path": f"outbox/quant/{F1}",
        "sha256": "f" * 64,
        "size": 1,
        "now": time.time(),
    }
    try:
        with pytest.raises(PermanentError, match=f"duplicates of pair {kept}"):
            store.create_batch(**new_version, on_supersede=partial(bound, model_id="local/none"))
        assert snapshot() == before
        store.create_batch(**new_version, on_supersede=partial(bound, model_id=model.model_id))
    finally:
        store.close()
    assert {p: of for p, (of, _, _) in duplicates(root).items()} == {kept: paraphrase}


def test_create_batch_without_an_older_version_does_not_call_on_supersede(root: Path) -> None:
    """A first version supersedes nothing: ``on_supersede`` is not called."""
    store = Store(settings(root).db_path)
    store.migrate()
    calls: list[list[int]] = []

    def record(db: Any, superseded: list[int], now: float) -> None:
        calls.append(superseded)

    try:
        for sha in ("1" * 64, "2" * 64):
            store.create_batch(
                agent="quant",
                path="outbox/quant/x.json",
                sha256=sha,
                size=1,
                now=1.0,
                on_supersede=record,
            )
    finally:
        store.close()
    assert calls == [[1]]
