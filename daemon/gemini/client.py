"""The google-genai client, built one way: API version pinned, timeouts bounded, and no
SDK retries, because the SDK's own retry ignores ``Retry-After``; ``call`` retries
instead and translates every SDK and transport error into ours at this one boundary."""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from daemon.core import heartbeat
from daemon.core.config import GeminiConfig
from daemon.core.errors import ConfigError, PermanentError, TransientError
from daemon.core.logs import Event, get_logger
from daemon.core.retry import retry_after_header

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


def make_client(config: GeminiConfig) -> Any:
    """A ``genai.Client`` for ``config``. Keep it alive: it closes its HTTP pool on ``__del__``."""
    try:
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
    from google.genai import errors

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
