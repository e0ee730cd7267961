"""Answer generators for ``inboxd ask``: one protocol (``base``), implementations chosen
by ``[rag] generator`` through :data:`GENERATORS`.

    llama    a local GGUF model through llama-cpp-python (the optional ``llm`` extra)
    none     no model: the answer is the retrieved context itself
    gemini   Gemini (``daemon.gemini.generator``), priced and budgeted like the judge
    openai   any OpenAI-compatible chat server (``[openai]``: Ollama, llama.cpp, vLLM...)
    auto     llama when llama-cpp-python and a GGUF file are there, else none
"""

from __future__ import annotations

from daemon.core.config import Config
from daemon.providers.generators.base import Generator
from daemon.providers.registry import Registry

__all__ = ["GENERATORS", "Generator", "make_generator"]

GENERATORS: Registry[Generator] = Registry(
    "rag.generator",
    {
        "llama": "daemon.providers.generators.llama:from_config",
        "none": "daemon.providers.generators.none:from_config",
        "gemini": "daemon.gemini.generator:from_config",
        "openai": "daemon.providers.generators.openai_compat:from_config",
        "auto": "daemon.providers.generators.llama:auto_from_config",
    },
)


def make_generator(config: Config, kind: str | None = None) -> Generator:
    """The generator ``kind`` names (default ``[rag] generator``)."""
    return GENERATORS.build(kind or config.rag.generator, config)
