"""Any OpenAI-compatible chat server as the answer generator of ``inboxd ask``
(``[rag] generator = "openai"``): Ollama, llama.cpp's server, vLLM, LM Studio. This is
how a Mixtral-class model usually runs next to a RAG system.

One ``POST {base_url}/chat/completions`` per question, through httpx2 (already a
dependency, through google-genai) rather than the ``openai`` package: that package reads
five ``OPENAI_*`` variables on its own and will not build a client without a key, while
local servers need none and here the key comes only from the variable
``[openai] api_key_env`` names; and the retries stay ours (bounded, logged, with the
server's ``Retry-After`` as a floor), like the Gemini client's.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

import httpx2

from daemon.core.config import Config
from daemon.core.config_sections import OpenAIConfig
from daemon.core.errors import ConfigError, PermanentError, TransientError
from daemon.core.logs import Event, get_logger
from daemon.core.retry import retry_after_header
from daemon.store import Store

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
# Backoff between attempts: full jitter under 0.5 s, 1 s, 2 s ... capped here. A person
# waits on `ask`, so a server asking for longer than MAX_WAIT_SECONDS is not waited on.
_BACKOFF_BASE, _BACKOFF_CAP, MAX_WAIT_SECONDS = 0.5, 8.0, 30.0
_EXCERPT = 300


def api_key(settings: OpenAIConfig) -> str | None:
    """The key from the variable ``api_key_env`` names; None when no key is configured."""
    if settings.api_key_env is None:
        return None
    value = os.environ.get(settings.api_key_env, "").strip()
    if not value:
        raise ConfigError(
            f"openai.api_key_env names {settings.api_key_env}, but that environment variable"
            " is empty or not set (under systemd, put it in the unit's EnvironmentFile)"
        )
    return value


def _server_message(response: httpx2.Response) -> str:
    """What the server said about an error: OpenAI's ``error.message``, FastAPI's
    ``detail``, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:_EXCERPT].strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:_EXCERPT]
        if error or body.get("detail"):
            return str(error or body.get("detail"))[:_EXCERPT]
    return str(body)[:_EXCERPT]


class OpenAIGenerator:
    """Chat completion at temperature 0, at most ``max_tokens`` tokens."""

    def __init__(
        self,
        settings: OpenAIConfig,
        *,
        max_tokens: int,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not settings.model:
            raise ConfigError(
                "openai.model is not set: name the model the server serves"
                " (e.g. INBOXD_OPENAI__MODEL=mixtral for Ollama)"
            )
        self.settings = settings
        self.model = settings.model
        self.name = f"openai/{self.model}"
        self.max_tokens = max_tokens
        self.url = settings.base_url.rstrip("/") + "/chat/completions"
        self.where = f"the OpenAI-compatible server at {settings.base_url}"
        key = api_key(settings)  # a missing key stops `ask` before retrieval
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._sleep = sleep

    def generate(self, system: str, user: str) -> str:
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "max_tokens": self.max_tokens,
            # The same question gets the same answer, as with the local llama generator.
            "temperature": 0.0,
            "stream": False,
        }
        with httpx2.Client(timeout=self.settings.timeout_seconds, headers=self._headers) as client:
            return self._answer(self._post(client, body))

    def _post(self, client: httpx2.Client, body: dict[str, Any]) -> Any:
        """The decoded completion; retries what may pass, maps the rest to our errors."""
        attempt = 0
        while True:
            attempt += 1
            hint: float | None = None
            try:
                response = client.post(self.url, json=body)
                response.raise_for_status()
            except httpx2.HTTPStatusError as exc:
                status = exc.response.status_code
                if status not in RETRY_STATUSES:
                    raise self._refused(exc.response) from exc
                failure = f"answered HTTP {status}: {_server_message(exc.response)}"
                hint = retry_after_header(exc.response.headers)
            except httpx2.TimeoutException:
                failure = (
                    f"did not answer within {self.settings.timeout_seconds:g} s"
                    " (a large model on a slow machine needs a larger openai.timeout_seconds)"
                )
            except httpx2.TransportError as exc:
                failure = f"cannot be reached ({type(exc).__name__}: {exc}); is it running?"
            else:
                try:
                    return response.json()
                except ValueError as exc:
                    raise PermanentError(
                        f"{self.where} answered with something that is not JSON"
                        f" ({response.text[:120]!r}); openai.base_url usually ends in /v1"
                    ) from exc
            if attempt > self.settings.max_retries:
                raise TransientError(f"{self.where} {failure} ({attempt} attempt(s))")
            if hint is not None and hint > MAX_WAIT_SECONDS:
                raise TransientError(
                    f"{self.where} {failure}; it asks to wait {hint:.0f} s, try again later"
                )
            ceiling = min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempt - 1))
            delay = max(random.uniform(0, ceiling), hint or 0.0)  # jitter, not crypto
            get_logger().warning(
                Event.OPENAI_RETRY,
                url=self.url,
                error=failure,
                attempt=attempt,
                retry_in_s=round(delay, 2),
            )
            self._sleep(delay)

    def _refused(self, response: httpx2.Response) -> Exception:
        """The error for an HTTP status that retrying cannot fix."""
        status, said = response.status_code, _server_message(response)
        if status in (401, 403):
            where_key = (
                f"the key in ${self.settings.api_key_env} was refused"
                if self.settings.api_key_env
                else "put the key in an environment variable and name it in openai.api_key_env"
            )
            return ConfigError(
                f"{self.where} refused the request (HTTP {status}: {said}): {where_key}"
            )
        if status == 404:
            return ConfigError(
                f"{self.where} answered HTTP 404 for {self.url} ({said}): check openai.base_url"
                f" (it usually ends in /v1) and openai.model ({self.model!r})"
            )
        return PermanentError(f"{self.where} refused the request (HTTP {status}: {said})")

    def _answer(self, completion: Any) -> str:
        """The text of the first choice; a refusal or an empty answer is an error."""
        choices = completion.get("choices") if isinstance(completion, dict) else None
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(choice, dict) or not isinstance(message, dict):
            raise PermanentError(
                f"{self.where} answered without a choice, not like a chat completion:"
                f" {str(completion)[:_EXCERPT]}"
            )
        if message.get("refusal"):
            raise PermanentError(f"{self.name} refused to answer: {message['refusal']}")
        finish = choice.get("finish_reason")
        if finish == "content_filter":
            raise PermanentError(
                f"{self.where} withheld the answer of {self.name} (finish_reason content_filter)"
            )
        content = message.get("content")
        text = content.strip() if isinstance(content, str) else ""
        if not text:
            hint = "; raise rag.max_tokens" if finish == "length" else ""
            raise PermanentError(
                f"{self.name} returned an empty answer (finish_reason {finish!r}){hint}"
            )
        return text


def make_generator(settings: OpenAIConfig, max_tokens: int) -> OpenAIGenerator:
    """The seam ``daemon.providers.generators`` loads for ``[rag] generator = "openai"``."""
    return OpenAIGenerator(settings, max_tokens=max_tokens)


def from_config(config: Config, store: Store | None = None) -> OpenAIGenerator:
    """The registry's factory for ``[rag] generator = "openai"``."""
    return make_generator(config.openai, config.rag.max_tokens)
