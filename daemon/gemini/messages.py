"""The plain request and answer types of the Gemini boundary: what the rest of the
provider sees instead of google-genai's types (``daemon/gemini/client.py`` converts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Prompt:
    """One generateContent request in plain terms."""

    system: str
    user: str
    temperature: float
    max_output_tokens: int | None = None
    #: When set, the answer must be JSON matching this schema.
    json_schema: dict[str, Any] | None = None
    thinking_budget: int | None = None


@dataclass(frozen=True)
class Reply:
    """A generateContent answer in plain terms."""

    text: str
    #: The first candidate's finish reason (``STOP``, ``MAX_TOKENS``...), "" when none.
    finish_reason: str
    #: (input, output) tokens from the usage metadata, thinking billed as output; None
    #: when the API reported no usage.
    usage: tuple[int, int] | None


@dataclass(frozen=True)
class Embedded:
    """The vectors of one embedContent call, one per text, as the API sent them."""

    vectors: list[list[float]]
    #: Input tokens from the usage metadata; None when the API reported none.
    input_tokens: int | None


@dataclass(frozen=True)
class RemoteJob:
    """A Batch API job as the server last described it."""

    name: str
    #: The JobState's name (``JOB_STATE_SUCCEEDED``...), None when the server sent none.
    state: str | None
    #: ``files/<id>`` of the results of a file job that finished.
    result_file: str | None = None
    #: The result lines of an inline job that finished, as in a results file.
    inlined: list[dict[str, Any]] = field(default_factory=list)
