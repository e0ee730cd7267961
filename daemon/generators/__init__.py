"""Answer generators for ``inboxd ask``: one protocol, implementations selected through
``GENERATORS`` by ``[rag] generator``.

    llama    a local GGUF model through llama-cpp-python (the optional ``llm`` extra)
    none     no model: the answer is the retrieved context itself
    gemini   Gemini (``daemon.gemini.generator``), priced and budgeted like the judge
    openai   any OpenAI-compatible chat server (``[openai]``: Ollama, llama.cpp, vLLM...)
    auto     llama when llama-cpp-python and a GGUF file are there, else none
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from daemon.config import Config
from daemon.errors import ConfigError


class Generator(Protocol):
    """Writes an answer from a system instruction and a user message holding the sources."""

    #: Shown with the answer and logged, e.g. ``llama/SmolLM2-135M-Instruct-Q8_0.gguf``.
    name: str

    def generate(self, system: str, user: str) -> str: ...


def _llama(config: Config) -> Generator:
    from daemon.generators.llama import LlamaGenerator, resolve_gguf

    return LlamaGenerator(
        resolve_gguf(config.rag.gguf_path, config.root),
        context_size=config.rag.context_size,
        max_tokens=config.rag.max_tokens,
        threads=config.rag.threads,
    )


def _none(config: Config) -> Generator:
    from daemon.generators.none import ContextOnly

    return ContextOnly()


def _gemini(config: Config) -> Generator:
    from daemon.gemini.generator import make_generator as gemini_generator

    return gemini_generator(config)


def _openai(config: Config) -> Generator:
    from daemon.generators.openai_compat import make_generator as openai_generator

    return openai_generator(config.openai, config.rag.max_tokens)


def _auto(config: Config) -> Generator:
    from daemon.generators.llama import llama_available

    return _llama(config) if llama_available(config.rag.gguf_path, config.root) else _none(config)


GENERATORS: dict[str, Callable[[Config], Generator]] = {
    "llama": _llama,
    "none": _none,
    "gemini": _gemini,
    "openai": _openai,
    "auto": _auto,
}


def make_generator(config: Config, kind: str | None = None) -> Generator:
    """The generator ``kind`` names (default ``[rag] generator``)."""
    chosen = kind or config.rag.generator
    factory = GENERATORS.get(chosen)
    if factory is None:
        raise ConfigError(
            f"rag.generator: {chosen!r} is not available (choose from {', '.join(GENERATORS)})"
        )
    return factory(config)
