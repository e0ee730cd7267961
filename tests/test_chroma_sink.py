"""The Chroma sink, with the real chromadb package: ``inboxd export --to chroma PATH``
and ``[rag] chroma_sync`` keep a PersistentClient collection equal to the active corpus
(ids = pair ids, inboxd's stored vectors, scalar metadata, cosine space) through drops,
supersedes and a de-duplication re-decision, and a query on it finds what
``inboxd search --mode dense`` finds. Without chromadb, the error names the extra."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
import rag_corpus
from conftest import TIMEOUT, daemon_env, drop, query, run_cli

from benchmarks.corpus import _peers, envelope, file_path, pairs_for
from benchmarks.corpus import queries as corpus_queries
from daemon.core.catalog import load_catalog
from daemon.core.logs import get_logger
from daemon.rag.chroma import Target, sync_collection
from daemon.rag.chroma_ledger import locked, records
from daemon.refine.corpus import indexable_ids, pair_vectors
from daemon.runtime.wiring import open_searcher
from daemon.store import Store
from daemon.store import corpus as q

QUESTIONS = (
    "How is the Relative Strength Index calculated?",
    "what do Bollinger Bands tell a crypto trader about volatility",
    "MVRV ratio above 3.5",
)
SCORER = "rubric/1"
MODEL = "local/all-MiniLM-L6-v2"


@contextlib.contextmanager
def _collection(path: Path, name: str = "inboxd") -> Iterator[Any]:
    """The collection through a client closed afterwards: Chroma's PersistentClient
    caches the store per process, and a cached one does not see another process's
    writes."""
    with chromadb.PersistentClient(
        path=str(path), settings=chromadb.config.Settings(anonymized_telemetry=False)
    ) as client:
        yield client.get_collection(name, embedding_function=None)


def _active_ids(root: Path) -> set[str]:
    """What inboxd's index must hold: active pairs whose duplicate check ran."""
    store = Store(root / "state" / "inboxd.db", readonly=True)
    try:
        return {str(i) for i in indexable_ids(store)}
    finally:
        store.close()


def _export(root: Path, path: Path, *args: str) -> dict[str, Any]:
    done = run_cli(root, "export", "--to", "chroma", str(path), "--json", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout))


def _assert_equals_corpus(root: Path, path: Path) -> set[str]:
    """The collection holds exactly the active pairs, each with inboxd's own vector and
    the metadata a fresh computation gives (so changed pairs were upserted)."""
    with _collection(path) as collection:
        got = collection.get(include=["embeddings", "metadatas", "documents"])
    wanted = _active_ids(root)
    assert set(got["ids"]) == wanted
    store = Store(root / "state" / "inboxd.db", readonly=True)
    try:
        ids = sorted(int(i) for i in got["ids"])
        rows = {str(r["id"]): r for r in q.pairs_by_id(store.db, ids)}
        vectors = dict(
            zip(
                [str(i) for i in ids],
                pair_vectors(store, MODEL, [rows[str(i)] for i in ids]),
                strict=True,
            )
        )
        fresh = records(store, ids, SCORER, load_catalog(), MODEL)
    finally:
        store.close()
    for chroma_id, vector, metadata, document in zip(
        got["ids"], got["embeddings"], got["metadatas"], got["documents"], strict=True
    ):
        assert np.allclose(vector, vectors[chroma_id], atol=1e-6)
        assert (document, metadata) == fresh[chroma_id]
    return wanted


@pytest.fixture(scope="module")
def refined(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A refined root (planted copies and junk) exported once to ``<root>/chroma``."""
    base = tmp_path_factory.mktemp("chroma")
    rag_corpus.build(base)
    _export(base, base / "chroma")
    return base


def test_export_writes_the_active_pairs_with_inboxds_vectors_and_scalar_metadata(
    refined: Path,
) -> None:
    """ids are pair ids, embeddings inboxd's stored vectors, metadata scalars (lists
    joined), the space cosine; a second export with nothing changed writes nothing, with or
    without the fingerprint ledger beside the collection."""
    wanted = _assert_equals_corpus(refined, refined / "chroma")
    with _collection(refined / "chroma") as collection, warnings.catch_warnings():
        # Chroma calls the config of a collection without embedding function legacy.
        warnings.simplefilter("ignore", DeprecationWarning)
        assert collection.configuration["hnsw"]["space"] == "cosine"
        assert collection.metadata["inboxd_model"] == MODEL
        metadatas = collection.get(include=["metadatas"])["metadatas"]
    for metadata in metadatas:
        assert all(isinstance(v, str | int | float | bool) for v in metadata.values())
        assert {"pair_id", "indicator", "session", "quality", "tier", "files"} <= set(metadata)
    assert any("; " in m.get("sources", "") for m in metadatas)
    assert any(m["duplicates_folded"] > 0 for m in metadatas)  # the planted copies
    again = _export(refined, refined / "chroma")
    assert (again["pairs"], again["upserted"], again["deleted"]) == (len(wanted), 0, 0)
    # Without the ledger beside the collection, the fingerprints are read from Chroma.
    ledger = refined / "chroma" / ".inboxd-sync-inboxd.json"
    assert set(json.loads(ledger.read_text())["fingerprints"]) == wanted
    ledger.unlink()
    read_back = _export(refined, refined / "chroma")
    assert (read_back["upserted"], read_back["deleted"]) == (0, 0) and ledger.exists()


def _assert_same_top_hits(
    root: Path, path: Path, questions: list[str], model: Any, cli_queries: int = 0
) -> None:
    """Chroma's top 5 for each question (embedded by inboxd's embedder) are the pairs and
    cosine distances of ``inboxd search --mode dense``: the CLI for the first
    ``cli_queries``, the same searcher in-process for the rest."""
    searcher = open_searcher(rag_corpus.settings(root), get_logger())
    try:
        for n, question in enumerate(questions):
            with _collection(path) as collection:
                found = collection.query(
                    query_embeddings=[model.embed_query(question)],
                    n_results=5,
                    include=["distances"],
                )
            if n < cli_queries:
                ran = run_cli(
                    root, "search", question, "--mode", "dense", "-k", "5",
                    "--max-distance", "2", "--json",
                )  # fmt: skip
                assert ran.returncode == 0, ran.stderr
                hits = [(h["pair_id"], h["distance"]) for h in json.loads(ran.stdout)]
            else:
                hits = [
                    (h.pair_id, h.distance)
                    for h in searcher.search(question, k=5, max_distance=2.0, mode="dense")
                ]
            assert [int(i) for i in found["ids"][0]] == [pid for pid, _ in hits], question
            assert np.allclose(found["distances"][0], [d for _, d in hits], atol=1e-3)
    finally:
        searcher.store.close()


def test_chroma_query_returns_the_same_top_hits_as_dense_search(refined: Path, model: Any) -> None:
    """For 18 queries, Chroma's top 5 are the pairs and distances `inboxd search --mode
    dense` returns (three of them through the command itself)."""
    questions = [*QUESTIONS, *corpus_queries(15, seed=4)]
    _assert_same_top_hits(refined, refined / "chroma", questions, model, cli_queries=3)


def _ids(root: Path, sql: str, params: list[Any] | None = None) -> set[str]:
    return {str(row[0]) for row in query(root, sql, params or [])}


def _deliver(root: Path, name: str, pairs: list[dict[str, Any]], agent: str = "droid") -> str:
    indicator = load_catalog().resolve(name)
    assert indicator is not None
    path = file_path(root, indicator, agent=agent)
    drop(path, envelope(indicator, pairs))
    return str(path.relative_to(root))


def _run(root: Path, *args: str, **env: str) -> str:
    ran = run_cli(root, *(args or ("run", "--once")), timeout=TIMEOUT * 3, **env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return ran.stdout + ran.stderr


def test_daemon_keeps_the_collection_equal_to_the_active_corpus_through_drops_supersedes_and_a_dedup_redecision(  # noqa: E501
    tmp_path: Path, model: Any
) -> None:
    """With ``[rag] chroma_sync``, every ``run --once`` and corpus run leaves the
    collection's ids equal to inboxd's active ids: copies folded away, pairs dropped
    from a superseded version deleted, a changed answer replaced, and the pairs a lower
    threshold folds deleted; a query on it still returns dense search's top hits."""
    root = tmp_path / "root"
    for name in ("inbox", "outbox", "state"):
        (root / name).mkdir(parents=True)
    sync = {"INBOXD_RAG__CHROMA_SYNC": "true"}
    chroma = root / "state" / "chroma"
    catalog = load_catalog()
    made = {}
    for name in ("rsi", "macd", "sma"):
        indicator = catalog.resolve(name)
        assert indicator is not None
        made[name] = pairs_for(indicator, 6, seed=2, peers=_peers(indicator), paraphrase_rate=0)
        _deliver(root, name, made[name])
    copies = [{**p, "question": p["question"].lower()} for p in made["rsi"][:3]]
    _deliver(root, "rsi", copies, agent="mirror")
    log = _run(root, **sync)
    assert '"chroma.synced"' in log
    first = _assert_equals_corpus(root, chroma)
    mirrored = _ids(root, "SELECT p.id FROM pairs p JOIN batches b ON b.id = p.first_batch_id"
                    " WHERE b.agent = 'mirror'")  # fmt: skip
    assert len(mirrored) == 3 and not mirrored & first  # the copies are folded away

    # A new version drops two pairs and rewrites one answer: the dropped pairs and the
    # old text leave the collection, the new text comes in.
    changed = {**made["macd"][3], "answer": made["macd"][3]["answer"] + " Or not."}
    _deliver(root, "macd", [*made["macd"][:3], changed])
    _run(root, **sync)
    second = _assert_equals_corpus(root, chroma)
    left = _ids(root, "SELECT id FROM pairs WHERE question IN (?, ?, ?)",
                [p["question"] for p in made["macd"][3:]]) - _ids(
        root, "SELECT id FROM pairs WHERE answer = ?", [changed["answer"]])  # fmt: skip
    assert len(left) == 3 and first - second == left & first
    assert second - first == _ids(
        root, "SELECT id FROM pairs WHERE answer = ?", [changed["answer"]]
    )

    # The corpus run re-decides duplicates at a lower threshold: more pairs fold.
    _run(root, "refine", INBOXD_DEDUP__THRESHOLD="0.75", **sync)
    third = _assert_equals_corpus(root, chroma)
    folded = int(query(root, "SELECT count(*) FROM duplicates")[0][0])
    assert third < second and folded > 3
    # After all that, a query on the collection still finds what dense search finds.
    _assert_same_top_hits(root, chroma, [*QUESTIONS, *corpus_queries(5, seed=9)], model)


def test_a_collection_inboxd_made_for_another_model_is_rebuilt_and_a_foreign_one_refused(
    refined: Path, tmp_path: Path
) -> None:
    """A collection whose metadata names another embedding model is dropped and written
    again; one inboxd did not write is left alone with an error naming the setting."""
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for path, metadata in ((ours, {"inboxd_model": "gemini/other@768"}), (theirs, None)):
        client = chromadb.PersistentClient(
            path=str(path), settings=chromadb.config.Settings(anonymized_telemetry=False)
        )
        made = client.create_collection("inboxd", metadata=metadata, embedding_function=None)
        made.add(ids=["x"], embeddings=[[0.1, 0.2, 0.3]], documents=["someone's"])
        client.close()
    rebuilt = _export(refined, ours)
    assert rebuilt["recreated"] is True
    _assert_equals_corpus(refined, ours)
    refused = run_cli(refined, "export", "--to", "chroma", str(theirs))
    assert refused.returncode == 1
    assert "inboxd did not write" in refused.stderr and "chroma_collection" in refused.stderr
    with _collection(theirs) as untouched:
        assert untouched.get()["ids"] == ["x"]


def test_a_bounded_sync_moves_the_collection_part_way_and_the_next_one_finishes_it(
    refined: Path, tmp_path: Path
) -> None:
    """With ``max_upserts`` (the daemon's step per idle tick) a sync writes that many
    pairs and says how many remain; the ledger matches what the collection holds, and
    later calls finish the job."""
    wanted = _active_ids(refined)
    target = Target(tmp_path / "stepped", "inboxd", MODEL, SCORER, load_catalog())
    store = Store(refined / "state" / "inboxd.db", readonly=True)
    try:
        first = sync_collection(store, target, max_upserts=20)
        assert first is not None
        assert (first.pairs, first.upserted, first.remaining) == (20, 20, len(wanted) - 20)
        ledger = json.loads((target.path / ".inboxd-sync-inboxd.json").read_text())
        with _collection(target.path) as collection:
            assert set(ledger["fingerprints"]) == set(collection.get(include=[])["ids"])
        second = sync_collection(store, target, max_upserts=20)
        assert second is not None and (second.pairs, second.upserted) == (40, 20)
        rest = sync_collection(store, target)
        assert rest is not None and (rest.remaining, rest.pairs) == (0, len(wanted))
    finally:
        store.close()
    _assert_equals_corpus(refined, target.path)


def test_a_daemon_sync_is_skipped_while_another_sync_holds_the_lock(refined: Path) -> None:
    """The daemon never waits on a person's export: with the lock taken, its sync
    returns at once and the next one catches up."""
    store = Store(refined / "state" / "inboxd.db", readonly=True)
    try:
        with locked(refined / "chroma", wait=True):
            target = Target(refined / "chroma", "inboxd", MODEL, SCORER, load_catalog())
            skipped = sync_collection(store, target, wait=False)
        assert skipped is None
    finally:
        store.close()


def _without_chromadb(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``inboxd ARGS`` in a process where ``import chromadb`` fails, as when the extra is
    not installed."""
    code = (
        "import sys; sys.modules['chromadb'] = None\n"
        "from daemon.cli.app import main\n"
        f"sys.argv = ['inboxd', '--root', {str(root)!r}, *{list(args)!r}]\n"
        "main()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=daemon_env(**env),
        timeout=TIMEOUT * 2,
        check=False,
    )


def test_without_chromadb_the_export_and_the_daemon_name_the_extra(
    refined: Path, tmp_path: Path
) -> None:
    """``export --to chroma`` fails with the pip command of the extra; a daemon asked to
    sync refuses to start and names the setting and the extra; the file export works."""
    export = _without_chromadb(refined, "export", "--to", "chroma", str(tmp_path / "c"))
    assert export.returncode == 1
    assert "pip install 'inboxd[chroma]'" in export.stderr
    daemon = _without_chromadb(refined, "run", "--once", INBOXD_RAG__CHROMA_SYNC="true")
    assert daemon.returncode != 0
    assert "rag.chroma_sync" in daemon.stderr and "inboxd[chroma]" in daemon.stderr
    files = _without_chromadb(refined, "export", "--json")
    assert files.returncode == 0, files.stderr[-2000:]
    assert json.loads(files.stdout)["pairs"] == len(_active_ids(refined))


def test_path_and_collection_are_refused_for_the_file_export(refined: Path) -> None:
    """PATH belongs to ``--to chroma``; the file export goes where ``[rag] export_dir``
    says, and saying otherwise is an error, not a silent default."""
    refused = run_cli(refined, "export", str(refined / "elsewhere"))
    assert refused.returncode == 1
    assert "--to chroma" in refused.stderr
    assert not (refined / "elsewhere").exists()
