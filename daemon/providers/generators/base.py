"""The answer generator protocol."""

from __future__ import annotations

from typing import Protocol


class Generator(Protocol):
    """Writes an answer from a system instruction and a user message holding the sources."""

    #: Shown with the answer and logged, e.g. ``llama/SmolLM2-135M-Instruct-Q8_0.gguf``.
    name: str

    def generate(self, system: str, user: str) -> str: ...
