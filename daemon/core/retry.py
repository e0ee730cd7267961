"""What an HTTP server's ``Retry-After`` header asks for, shared by every remote client
(Gemini, OpenAI-compatible servers)."""

from __future__ import annotations

import email.utils
import time
from typing import Any


def retry_after_header(headers: Any) -> float | None:
    """Seconds a ``Retry-After`` header (seconds or an HTTP date) asks to wait; None
    when there is none or it cannot be read."""
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time())
