"""The export for a RAG system: written by the corpus refinement run and by
``inboxd export``, complete and checksummed, published atomically (a SIGKILLed export
leaves the previous one intact), and loadable by its README's example in a fresh
process with only hnswlib, json and the embedding model."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rag_corpus
from conftest import INBOXD, daemon_env, poll_until, query, run_cli

from daemon.rag.export import export_path, verify_export, versions_dir

QUESTIONS = (
    "How is the Relative Strength Index calculated?",
    "what do Bollinger Bands tell a crypto trader about volatility",
    "MVRV ratio above 3.5",
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, rag_template: Path) -> Path:
    """A refined root (its corpus run has exported once)."""
    return rag_corpus.copy_of(rag_template, tmp_path_factory.mktemp("export"))


def _export(root: Path) -> Path:
    result = run_cli(root, "export", "--json")
    assert result.returncode == 0, result.stderr
    return Path(json.loads(result.stdout)["version"])


def test_corpus_refinement_run_exports_automatically(root: Path) -> None:
    """After the corpus run, state/export holds one line per indexed pair."""
    link = root / "state" / "export"
    assert link.is_symlink()
    manifest = verify_export(link)
    indexed = json.loads((root / "state" / "index" / "pairs.meta.json").read_text())["count"]
    assert manifest["counts"]["pairs"] == indexed
    assert len((link / "knowledge_base.jsonl").read_text().splitlines()) == indexed


def test_export_writes_pairs_index_labels_and_a_manifest_whose_checksums_match(
    root: Path,
) -> None:
    """Every active pair is exported with its indicator, session, category, quality, tier
    and provenance; the manifest counts them and checksums every file."""
    version = _export(root)
    manifest = verify_export(root / "state" / "export")
    assert (root / "state" / "export").resolve() == version
    records = [
        json.loads(line) for line in (version / "knowledge_base.jsonl").read_text().splitlines()
    ]
    active = {
        pid
        for (pid,) in query(
            root,
            "SELECT id FROM pairs WHERE id NOT IN (SELECT pair_id FROM duplicates)",
        )
    }
    assert {r["id"] for r in records} == active
    assert set(json.loads((version / "labels.json").read_text())["ids"]) == active
    rsi = next(r for r in records if r["indicator"] == "rsi")
    assert rsi["indicator_name"] == "Relative Strength Index"
    assert rsi["session"] == rag_corpus.indicator("rsi").session
    assert rsi["category"]
    assert rsi["tier"] in {"premium", "good", "fair", "poor"}
    assert 0 <= rsi["quality"] <= 100
    assert rsi["provenance"]["files"][0]["path"].endswith("rsi_qa_pairs.json")
    assert rsi["provenance"]["files"][0]["agent"] in {"droid", "mirror"}
    # The planted copies of RSI pairs are folded into the kept ones, and say so.
    assert sum(len(r["provenance"]["duplicates_folded"]) for r in records) > 0
    assert manifest["counts"]["pairs"] == len(records)
    assert manifest["counts"]["imported_pairs"] > len(records)
    assert manifest["quality"]["scored"] == len(records)
    assert set(manifest["files"]) == {
        "knowledge_base.jsonl",
        "pairs.hnsw",
        "pairs.meta.json",
        "labels.json",
        "README.md",
    }
    meta = json.loads((version / "pairs.meta.json").read_text())
    assert (meta["model"], meta["dimension"], meta["space"]) == (
        "local/all-MiniLM-L6-v2",
        384,
        "cosine",
    )


def test_readme_example_in_a_fresh_process_finds_the_same_top_pairs_as_dense_search(
    root: Path,
) -> None:
    """The README's Python example, run as written in a fresh interpreter that imports
    only hnswlib, json and the model, returns the same top 5 as `inboxd search --mode
    dense` for each query."""
    _export(root)
    readme = (root / "state" / "export" / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S)
    assert code is not None
    lines = code.group(1).splitlines()
    assert len(lines) <= 20
    for question in QUESTIONS:
        script = code.group(1).replace(
            'QUESTION = "How is the Relative Strength Index calculated?"',
            f"QUESTION = {question!r}",
        )
        script += "\nimport sys\nassert not any(m.startswith('daemon') for m in sys.modules)\n"
        ran = subprocess.run(
            [sys.executable, "-I", "-c", script],
            capture_output=True,
            text=True,
            env=daemon_env(),
            cwd=str(root.parent),
            timeout=120,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr[-2000:]
        example_ids = [int(line.split()[0]) for line in ran.stdout.splitlines()]
        searched = run_cli(
            root, "search", question, "--mode", "dense", "-k", "5", "--max-distance", "2", "--json"
        )
        assert searched.returncode == 0, searched.stderr
        assert example_ids == [hit["pair_id"] for hit in json.loads(searched.stdout)]


def test_export_killed_midway_leaves_the_previous_export_intact(root: Path) -> None:
    """An `inboxd export` SIGKILLed while writing its new folder leaves state/export on
    the previous, complete export; the next export succeeds and clears the leftovers."""
    previous = _export(root)
    link = export_path(rag_corpus.settings(root))
    versions = versions_dir(link)
    caught_midway = False
    for _ in range(5):
        proc = subprocess.Popen(
            [str(INBOXD), "--root", str(root), "export"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=daemon_env(),
            start_new_session=True,
        )
        try:
            # Freeze it the moment its work folder appears, then kill it there.
            started = poll_until(lambda: any(versions.glob(".tmp-*")), 60, interval=0.001)
            os.killpg(proc.pid, signal.SIGSTOP)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        assert started
        assert link.resolve() in {previous, *versions.iterdir()}
        verify_export(link)  # whatever the link points at is whole
        if link.resolve() == previous and any(versions.glob(".tmp-*")):
            caught_midway = True
            break
        previous = link.resolve()  # it finished before the signal landed: try again
    assert caught_midway, "the export always finished before SIGSTOP; could not test"
    manifest = verify_export(link)  # the previous export, whole
    assert link.resolve() == previous
    assert manifest["counts"]["pairs"] > 0
    time.sleep(0.01)  # mtime granularity: pruning keeps versions by modification time
    newer = _export(root)
    assert newer != previous
    assert link.resolve() == newer
    assert not list(versions.glob(".tmp-*"))
    verify_export(link)


def test_old_exports_are_pruned_but_the_previous_one_is_kept(root: Path) -> None:
    """Each export keeps the one before it (for readers that resolved the link) and
    removes older ones."""
    first, second, third = _export(root), _export(root), _export(root)
    finished = list(versions_dir(root / "state" / "export").iterdir())
    assert third in finished and second in finished
    assert first not in finished
    assert len(finished) == 2


def test_a_failed_automatic_export_is_logged_and_the_refinement_run_still_succeeds(
    root: Path,
) -> None:
    """`inboxd refine` with an export folder that cannot be created finishes (exit 0),
    logs export.failed with the reason, and leaves state/export as it was."""
    before = (root / "state" / "export").resolve()
    (root / "a-file").write_text("not a folder")
    result = run_cli(root, "refine", INBOXD_RAG__EXPORT_DIR="a-file/export")
    assert result.returncode == 0, result.stderr
    failed = [
        json.loads(line)
        for line in result.stderr.splitlines()
        if line.startswith("{") and json.loads(line).get("event") == "export.failed"
    ]
    assert failed and "a-file" in failed[0]["error"]
    assert (root / "state" / "export").resolve() == before


def test_auto_export_off_leaves_the_export_alone(root: Path) -> None:
    """With rag.auto_export = false a corpus run writes no export."""
    result = run_cli(
        root,
        "refine",
        INBOXD_RAG__AUTO_EXPORT="false",
        INBOXD_RAG__EXPORT_DIR="elsewhere/export",
    )
    assert result.returncode == 0, result.stderr
    assert not (root / "elsewhere").exists()
