"""The one module that talks to google-genai.

The client is built one way: API version pinned, timeouts bounded, and no SDK retries,
because the SDK's own retry ignores ``Retry-After``; ``call`` retries instead and
translates every SDK and transport error into ours. The rest of the provider never
sees an SDK type: the functions below build the SDK's request objects from plain
arguments and hand back plain ones (:class:`Reply`, :class:`Embedded`,
:class:`RemoteJob`, from ``messages``; JSON-able dicts).

google.genai itself is imported inside the functions that need it: importing it costs
about a second and this module is loaded by every daemon, Gemini configured or not.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from daemon.core import heartbeat
from daemon.core.config_sections import GeminiConfig
from daemon.core.errors import ConfigError, InboxdError, PermanentError, TransientError
from daemon.core.logs import Event, get_logger
from daemon.core.retry import retry_after_header

# The plain types callers get instead of the SDK's; re-exported, the names callers use.
from daemon.gemini.messages import Embedded as Embedded
from daemon.gemini.messages import Prompt as Prompt
from daemon.gemini.messages import RemoteJob as RemoteJob
from daemon.gemini.messages import Reply as Reply

if TYPE_CHECKING:  # the SDK's types for mypy; at run time it is imported lazily, below
    from google.genai import Client as Client  # re-exported: the type callers name
    from google.genai import types as sdk

T = TypeVar("T")

#: Where the key may come from, in this order. Only the environment: never the TOML file,
#: the DB or a log line.
KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def api_key() -> str:
    """The key from the environment, or a ConfigError saying where to put it."""
    for name in KEY_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    raise ConfigError(
        "the Gemini provider needs an API key in GEMINI_API_KEY (or GOOGLE_API_KEY);"
        " under systemd put it in the unit's EnvironmentFile"
    )


def make_client(config: GeminiConfig) -> Client:
    """A ``genai.Client`` for ``config``. Keep it alive: it closes its HTTP pool on ``__del__``."""
    try:
        # Lazy: see the module docstring.
        from google import genai
        from google.genai import types
    except ImportError as exc:  # pragma: no cover - the dependency is declared
        raise ConfigError(f"the Gemini provider needs google-genai installed ({exc})") from exc
    options = types.HttpOptions(
        base_url=config.base_url,
        api_version=config.api_version,
        timeout=round(config.timeout_seconds * 1000),  # the SDK takes milliseconds
        retry_options=types.HttpRetryOptions(attempts=1),  # ours, in ``call``
    )
    return genai.Client(api_key=api_key(), http_options=options)


_DELAY = re.compile(r"^\s*([\d.]+)s\s*$")


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait: ``Retry-After`` (seconds or a date), else
    google.rpc.RetryInfo's ``retryDelay``; None when it said nothing."""
    response = getattr(exc, "response", None)
    header = retry_after_header(getattr(response, "headers", None))
    if header is not None:
        return header
    details = getattr(exc, "details", None)
    error = details.get("error") if isinstance(details, dict) else None
    for item in (error or {}).get("details") or []:
        match = _DELAY.match(str(item.get("retryDelay", ""))) if isinstance(item, dict) else None
        if match:
            return float(match.group(1))
    return None


def _classify(exc: BaseException) -> tuple[bool, str]:
    """(worth retrying, operator-readable text) for an exception from the SDK."""
    from google.genai import errors  # lazy: see the module docstring

    if isinstance(exc, errors.APIError):
        text = f"Gemini API {exc.code} {exc.status or ''}: {exc.message or ''}".strip()
        return exc.code in RETRY_STATUSES, text
    name = type(exc).__name__
    # httpx(2) timeouts and connection errors: the SDK raises the transport's own types.
    if name.endswith(("Timeout", "TimeoutException", "ConnectError", "RemoteProtocolError")):
        return True, f"Gemini API unreachable or too slow ({name})"
    if isinstance(exc, json.JSONDecodeError):
        return True, "Gemini API answered with something that is not JSON (a proxy page?)"
    return False, f"Gemini call failed: {name}: {exc}"


def backoff(attempt: int, config: GeminiConfig, hint: float | None) -> float:
    """Exponential backoff with full jitter; the server's ``Retry-After`` is a floor."""
    ceiling = min(config.backoff_max_seconds, config.backoff_base_seconds * 2 ** (attempt - 1))
    delay = random.uniform(0, ceiling)  # jitter, not crypto
    return delay if hint is None else max(delay, hint)


def call(
    fn: Callable[[], T],
    config: GeminiConfig,
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run one SDK call with retries on 429/5xx/timeouts; raises TransientError once the
    attempts are spent and PermanentError for anything retrying cannot fix."""
    attempt = 0
    while True:
        attempt += 1
        # The request is bounded by the client's timeout: the worker's heartbeat allows
        # for it (and a stopping daemon does not start another attempt).
        heartbeat.expect(config.timeout_seconds)
        try:
            return fn()
        except Exception as exc:
            retryable, text = _classify(exc)
            if not retryable:
                raise PermanentError(f"{what}: {text}") from exc
            if attempt >= config.max_attempts:
                raise TransientError(f"{what}: {text} (after {attempt} attempts)") from exc
            hint = retry_after(exc)
            if hint is not None and hint > config.backoff_max_seconds:
                # Waiting that long here would stall the loop: let the caller's own,
                # longer backoff (a batch retry, the next poll) take over.
                raise TransientError(f"{what}: {text} (server asks to wait {hint:.0f}s)") from exc
            delay = backoff(attempt, config, hint)
            get_logger().warning(
                Event.GEMINI_RETRY,
                what=what,
                error=text,
                attempt=attempt,
                retry_in_s=round(delay, 2),
            )
            heartbeat.expect(delay)
            sleep(delay)


def ceil_tokens(text: str) -> int:
    """A documented estimate where the API reports no usage: about four characters a token."""
    return 0 if not text else max(1, math.ceil(len(text) / 4))


# -- generateContent -------------------------------------------------------------------


def generate(
    client: Client,
    config: GeminiConfig,
    model: str,
    prompt: Prompt,
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> Reply:
    """One generateContent call (with ``call``'s retries)."""
    settings = _generate_config(prompt)
    response = call(
        lambda: client.models.generate_content(model=model, contents=prompt.user, config=settings),
        config,
        what=what,
        sleep=sleep,
    )
    return _reply(response)


def _generate_config(prompt: Prompt) -> sdk.GenerateContentConfig:
    from google.genai import types  # lazy: see the module docstring

    return types.GenerateContentConfig(
        system_instruction=prompt.system,
        temperature=prompt.temperature,
        max_output_tokens=prompt.max_output_tokens,
        response_mime_type=None if prompt.json_schema is None else "application/json",
        response_json_schema=prompt.json_schema,
        thinking_config=None
        if prompt.thinking_budget is None
        else types.ThinkingConfig(thinking_budget=prompt.thinking_budget),
    )


def reply_from_json(data: dict[str, Any]) -> Reply:
    """A Batch API result line's ``response`` (REST JSON); ValueError when unreadable."""
    from google.genai import types  # lazy: see the module docstring

    return _reply(types.GenerateContentResponse.model_validate(data))


def _reply(response: sdk.GenerateContentResponse) -> Reply:
    candidates = response.candidates or []
    finish = candidates[0].finish_reason if candidates else None
    try:
        text = response.text or ""
    except (ValueError, AttributeError):
        text = ""
    usage = response.usage_metadata
    tokens = None
    if usage is not None and usage.prompt_token_count is not None:
        output = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
        tokens = (int(usage.prompt_token_count), int(output))
    # An enum in this SDK; a plain string from a future one still reads.
    reason = getattr(finish, "name", str(finish)) if finish else ""
    return Reply(text=text, finish_reason=reason, usage=tokens)


# -- embedContent ----------------------------------------------------------------------


def embed(
    client: Client,
    config: GeminiConfig,
    model: str,
    texts: Sequence[str],
    *,
    task_type: str,
    dimension: int,
    sleep: Callable[[float], None] = time.sleep,
) -> Embedded:
    """One embedContent call for ``texts`` (at most 100: the server's cap)."""
    from google.genai import types  # lazy: see the module docstring

    # One Content per text: for multimodal embedding models the SDK would otherwise
    # merge a list of strings into one content and return a single vector (#2523).
    contents = [types.Content(parts=[types.Part(text=t)]) for t in texts]
    settings = types.EmbedContentConfig(task_type=task_type, output_dimensionality=dimension)
    response = call(
        lambda: client.models.embed_content(model=model, contents=contents, config=settings),
        config,
        what="embed",
        sleep=sleep,
    )
    usage = getattr(response, "usage_metadata", None)
    tokens = getattr(usage, "prompt_token_count", None)
    return Embedded(
        vectors=[list(e.values or []) for e in response.embeddings or []],
        input_tokens=int(tokens) if tokens is not None else None,
    )


# -- Batch API -------------------------------------------------------------------------

MIME_TYPES = ("application/jsonl", "jsonl")  # the second for servers that refuse the first


def _remote(job: sdk.BatchJob) -> RemoteJob:
    dest = job.dest
    lines: list[dict[str, Any]] = []
    for item in (dest.inlined_responses if dest is not None else None) or []:
        key = (item.metadata or {}).get("key")
        if item.error is not None:
            lines.append({"key": key, "error": {"message": item.error.message}})
        elif item.response is not None:
            lines.append(
                {
                    "key": key,
                    "response": item.response.model_dump(
                        mode="json", by_alias=True, exclude_none=True
                    ),
                }
            )
    return RemoteJob(
        name=str(job.name),
        state=job.state.name if job.state else None,
        result_file=dest.file_name if dest is not None and dest.file_name else None,
        inlined=lines,
    )


def find_batch(client: Client, config: GeminiConfig, display_name: str) -> RemoteJob | None:
    """The remote job with this display name, if one was created."""

    def listing() -> sdk.BatchJob | None:
        return next(
            (
                j
                for j in client.batches.list(config={"page_size": 100})
                if j.display_name == display_name
            ),
            None,
        )

    found = call(listing, config, what="batches.list")
    return None if found is None else _remote(found)


def upload_jsonl(client: Client, config: GeminiConfig, path: Path, display_name: str) -> str:
    """Upload a JSONL file of requests; its ``files/<id>`` name."""
    from google.genai import types  # lazy: see the module docstring

    last: InboxdError | None = None
    for mime in MIME_TYPES:
        settings = types.UploadFileConfig(mime_type=mime, display_name=display_name)
        try:
            uploaded = call(
                lambda settings=settings: client.files.upload(  # type: ignore[misc]
                    file=str(path), config=settings
                ),
                config,
                what="files.upload",
            )
            return str(uploaded.name)
        except PermanentError as exc:
            if "mime" not in str(exc).lower():
                raise
            last = exc
    assert last is not None
    raise last


def create_batch(
    client: Client, config: GeminiConfig, *, model: str, src: str, display_name: str
) -> RemoteJob:
    """Create a Batch API job over the uploaded file ``src``."""
    created = call(
        lambda: client.batches.create(model=model, src=src, config={"display_name": display_name}),
        config,
        what="batches.create",
    )
    return _remote(created)


def get_batch(client: Client, config: GeminiConfig, name: str) -> RemoteJob:
    """The job as the server describes it now."""
    return _remote(call(lambda: client.batches.get(name=name), config, what="batches.get"))


def result_lines(client: Client, config: GeminiConfig, job: RemoteJob) -> list[dict[str, Any]]:
    """A finished job's result lines (``key`` and ``response`` or ``error``); a line that
    is not JSON is left out, so its key counts as missing and is asked again."""
    if job.result_file is None:
        return job.inlined
    name = job.result_file
    raw = call(lambda: client.files.download(file=name), config, what="files.download")
    lines = []
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return [line for line in lines if isinstance(line, dict)]


def job_error(client: Client, name: str) -> str:
    """A failed job's error text. The SDK drops ``error`` on the Gemini API, so read the
    raw operation (a private call; any failure just leaves the state as the reason)."""
    try:
        raw = client._api_client.request("get", name, {}).body or ""
        error = json.loads(raw).get("error") or {}
        return str(error.get("message") or "")
    except Exception:  # noqa: BLE001 - best effort detail for an already-known failure
        return ""
