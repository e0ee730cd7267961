"""One contract, every provider: the same tests run against each embedder (the local
model, Gemini against the loopback fake) and each scorer (the rubric, the interactive
Gemini judge, the deferred judge of batch mode), the way huey runs one suite against
every storage backend. Providers are built the way the daemon builds them, through
their registry with a migrated Store. A provider added to a registry without a setup
here fails ``test_every_registered_provider_runs_the_contract``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from gemini_fake import FakeGemini
from gemini_helpers import gemini_config, open_store, sample_pairs

from daemon.core.config import Config, load_config
from daemon.core.quality import tier
from daemon.providers.embedders import EMBEDDERS, Embedder, make_embedder
from daemon.providers.scorers import SCORERS, PairToScore, Scorer, make_scorer

#: Builds a configured root (a fake server, if it needs one, stays up until the test ends).
Setup = Callable[[Path, pytest.MonkeyPatch, ExitStack], Config]


def _local_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack: ExitStack) -> Config:
    return load_config(tmp_path)


def _gemini_root(**gemini: object) -> Setup:
    def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack: ExitStack) -> Config:
        fake = stack.enter_context(FakeGemini())
        monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
        monkeypatch.setenv("GEMINI_API_KEY", fake.api_key)
        return gemini_config(tmp_path, fake, **gemini)

    return setup


#: Embedder name in EMBEDDERS -> its root.
EMBEDDER_SETUPS: dict[str, Setup] = {
    "local": _local_root,
    "gemini": _gemini_root(embeddings=True),
}


@dataclass(frozen=True)
class ScorerCase:
    """A scorer's root, which registry name it is, and whether it scores at once."""

    registered_as: str
    setup: Setup
    scores_now: bool


SCORER_CASES: dict[str, ScorerCase] = {
    "rubric": ScorerCase("rubric", _local_root, scores_now=True),
    "gemini-judge": ScorerCase("gemini", _gemini_root(mode="interactive"), scores_now=True),
    "gemini-deferred": ScorerCase("gemini", _gemini_root(mode="batch"), scores_now=False),
}

TEXTS = [
    "How is the Relative Strength Index calculated?",
    "RSI compares average gains and losses over 14 bars; above 70 is overbought.",
    "What does MVRV above 3.5 suggest about Bitcoin?",
]


@pytest.fixture(params=sorted(EMBEDDER_SETUPS))
def build_embedder(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], Embedder]]:
    """Builds the parametrised embedder from one root, as often as a test asks."""
    with ExitStack() as stack:
        config = EMBEDDER_SETUPS[request.param](tmp_path, monkeypatch, stack)
        store = open_store(config)
        stack.callback(store.close)
        yield lambda: make_embedder(config, store)


@pytest.fixture
def embedder(build_embedder: Callable[[], Embedder]) -> Embedder:
    """One embedder of the parametrised kind."""
    return build_embedder()


@pytest.fixture(params=sorted(SCORER_CASES))
def scorer_case(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ScorerCase, Callable[[], Scorer]]]:
    """The parametrised scorer's case and a builder for it over one root."""
    case = SCORER_CASES[request.param]
    with ExitStack() as stack:
        config = case.setup(tmp_path, monkeypatch, stack)
        assert config.scoring.provider == case.registered_as
        store = open_store(config)
        stack.callback(store.close)
        yield case, lambda: make_scorer(config, store)


def _pairs(count: int) -> list[PairToScore]:
    return [PairToScore(f"pair-{i}", q, a) for i, (q, a) in enumerate(sample_pairs(count))]


# -- every embedder ----------------------------------------------------------------------


def test_every_registered_provider_runs_the_contract() -> None:
    """Each name in the embedder and scorer registries has a setup in this suite."""
    assert set(EMBEDDERS.names()) == set(EMBEDDER_SETUPS)
    assert set(SCORERS.names()) == {case.registered_as for case in SCORER_CASES.values()}


def test_documents_are_unit_length_float32_rows_of_the_dimension(embedder: Embedder) -> None:
    """embed_documents gives one float32 row of ``dimension`` columns per text, each of
    L2 norm 1 (cosine similarity is then a dot product)."""
    vectors = embedder.embed_documents(TEXTS)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(TEXTS), embedder.dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_the_same_text_gives_the_same_vector(embedder: Embedder) -> None:
    """A text embeds to the same vector within a call and across calls; different texts
    to different vectors."""
    first = embedder.embed_documents([TEXTS[0], TEXTS[1], TEXTS[0]])
    again = embedder.embed_documents([TEXTS[0]])
    assert np.allclose(first[0], first[2], atol=1e-6)
    assert np.allclose(first[0], again[0], atol=1e-5)
    assert not np.allclose(first[0], first[1], atol=1e-3)


def test_no_texts_give_an_empty_matrix_of_the_dimension(embedder: Embedder) -> None:
    """Embedding nothing returns a (0, dimension) float32 matrix, not an error."""
    for vectors in (embedder.embed_documents([]), embedder.embed_queries([])):
        assert vectors.shape == (0, embedder.dimension)
        assert vectors.dtype == np.float32


def test_a_query_is_one_unit_vector_and_agrees_with_the_batch_form(embedder: Embedder) -> None:
    """embed_query gives a (dimension,) unit vector equal to embed_queries' row for it."""
    one = embedder.embed_query(TEXTS[2])
    many = embedder.embed_queries([TEXTS[0], TEXTS[2]])
    assert one.shape == (embedder.dimension,)
    assert abs(float(np.linalg.norm(one)) - 1.0) < 1e-5
    assert np.allclose(one, many[1], atol=1e-5)


def test_model_id_is_stable_and_names_provider_and_model(
    build_embedder: Callable[[], Embedder],
) -> None:
    """Two embedders built from one config share a model_id of the form provider/model,
    since cached vectors are keyed by it."""
    first, second = build_embedder(), build_embedder()
    assert first.model_id == second.model_id
    assert re.fullmatch(r"[a-z]+/\S+", first.model_id)
    assert first.dimension == second.dimension > 0


# -- every scorer ------------------------------------------------------------------------


def test_scores_are_0_to_100_with_the_matching_tier(
    scorer_case: tuple[ScorerCase, Callable[[], Scorer]],
) -> None:
    """Every Score is between 0 and 100 with numeric sub-scores, and the tier stored with
    it is the tier of its score."""
    _, build = scorer_case
    for score in build().score(_pairs(4)):
        assert 0 <= score.score <= 100
        assert all(isinstance(v, float) for v in score.subscores.values())
        assert score.as_row()["tier"] == tier(score.score) == score.tier


def test_one_score_per_pair_now_or_none_when_deferred(
    scorer_case: tuple[ScorerCase, Callable[[], Scorer]],
) -> None:
    """A scorer that scores at once returns exactly one Score per pair, in order; the
    deferred judge returns none (the corpus run's batch job scores them)."""
    case, build = scorer_case
    pairs = _pairs(5)
    scores = build().score(pairs)
    expected = [p.hash for p in pairs] if case.scores_now else []
    assert [s.pair_hash for s in scores] == expected


def test_scoring_nothing_returns_nothing(
    scorer_case: tuple[ScorerCase, Callable[[], Scorer]],
) -> None:
    """An empty list of pairs gives an empty list of scores."""
    _, build = scorer_case
    assert build().score([]) == []


def test_the_same_pair_gets_the_same_score(
    scorer_case: tuple[ScorerCase, Callable[[], Scorer]],
) -> None:
    """Scoring a pair again gives the same score (cached scores stay meaningful)."""
    _, build = scorer_case
    scorer = build()
    pair = _pairs(1)
    assert [s.score for s in scorer.score(pair)] == [s.score for s in scorer.score(pair)]


def test_the_name_carries_a_version_and_is_stable(
    scorer_case: tuple[ScorerCase, Callable[[], Scorer]],
) -> None:
    """The name scores are cached under carries a version (``rubric/1``, the judge's
    ``.../p1/<hash>``) and is the same for every scorer built from one config."""
    _, build = scorer_case
    first, second = build(), build()
    assert first.name == second.name
    assert re.search(r"/p?\d+(/|$)", first.name), first.name
