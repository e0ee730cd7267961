"""Answers for the fake ``generateContent``: a schema-driven default judge and broken variants.

A responder is any callable ``(prompt_text, schema) -> str``. ``schema`` is the request's
``generationConfig.responseJsonSchema`` (standard JSON Schema) if present, else its
``responseSchema`` (the OpenAPI subset with upper-case ``type`` names), else ``None``.
A responder may raise :class:`FakeApiError` to make that one request fail (an HTTP error for a
direct call, an ``error`` object on that key's line for a batch job).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

Responder = Callable[[str, Any], str]

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_name(code: int) -> str:
    """The google.rpc status name the real API pairs with an HTTP code."""
    return _STATUS_NAMES.get(code, "UNKNOWN")


class FakeApiError(Exception):
    """Raised by a responder (or the fake itself) to fail one request with a google.rpc error."""

    def __init__(self, code: int, message: str, status: str | None = None) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.status = status or status_name(code)

    def to_json(self) -> dict[str, Any]:
        """The ``{"code", "message", "status"}`` object used in bodies and result lines."""
        return {"code": self.code, "message": self.message, "status": self.status}


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _type_of(schema: dict[str, Any]) -> str | None:
    t = schema.get("type")
    if isinstance(t, list):  # JSON Schema ["integer", "null"]
        t = next((x for x in t if str(x).lower() != "null"), None)
    return str(t).lower() if t is not None else None


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` into ``$defs``/``definitions`` and pick the first non-null ``anyOf``."""
    seen = 0
    while isinstance(schema, dict) and seen < 32:
        seen += 1
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            node: Any = root
            for part in ref[2:].split("/"):
                node = node.get(part, {}) if isinstance(node, dict) else {}
            schema = node
            continue
        for key in ("anyOf", "any_of", "oneOf", "one_of"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                non_null = [o for o in options if _type_of(_resolve(o, root)) != "null"]
                schema = non_null[0] if non_null else options[0]
                break
        else:
            return schema
    return schema if isinstance(schema, dict) else {}


def _bounds(schema: dict[str, Any], lo: float, hi: float) -> tuple[float, float]:
    lo = float(schema.get("minimum", lo))
    hi = float(schema.get("maximum", hi))
    if "exclusiveMinimum" in schema:
        lo = float(schema["exclusiveMinimum"]) + 1
    if "exclusiveMaximum" in schema:
        hi = float(schema["exclusiveMaximum"]) - 1
    return (lo, hi) if lo <= hi else (hi, lo)


def example_for_schema(schema: Any, seed_text: str = "", *, root: Any = None) -> Any:
    """A value that validates against ``schema`` (both JSON Schema and the OpenAPI subset).

    Deterministic: integers and numbers are spread over ``minimum..maximum`` from a hash of
    ``seed_text`` plus the property path, so the same prompt always gets the same answer.
    """
    root = root if isinstance(root, dict) else (schema if isinstance(schema, dict) else {})
    node = _resolve(schema, root)
    if not node:
        return {}
    if node.get("enum"):
        choices = list(node["enum"])
        return choices[_seed(seed_text) % len(choices)]
    if "const" in node:
        return node["const"]
    kind = _type_of(node)
    if kind is None:
        kind = "object" if "properties" in node else "string"
    if kind == "object":
        props = node.get("properties") or {}
        order = node.get("property_ordering") or node.get("propertyOrdering") or list(props)
        return {
            name: example_for_schema(props[name], f"{seed_text}/{name}", root=root)
            for name in order
            if name in props
        }
    if kind == "array":
        n = max(1, int(node.get("minItems", node.get("min_items", 1))))
        items = node.get("items") or {"type": "string"}
        return [example_for_schema(items, f"{seed_text}[{i}]", root=root) for i in range(n)]
    if kind == "integer":
        lo, hi = _bounds(node, 1, 5)
        ilo, ihi = int(lo), int(hi)
        return ilo + _seed(seed_text) % (ihi - ilo + 1)
    if kind == "number":
        lo, hi = _bounds(node, 0.0, 1.0)
        return round(lo + (hi - lo) * (_seed(seed_text) % 1001) / 1000, 3)
    if kind == "boolean":
        return _seed(seed_text) % 2 == 0
    if kind == "null":
        return None
    # string
    text = f"fake {node.get('title') or node.get('description') or 'text'}".strip()
    min_len = int(node.get("minLength", node.get("min_length", 0)))
    if len(text) < min_len:
        text = text.ljust(min_len, "x")
    max_len = node.get("maxLength", node.get("max_length"))
    if max_len is not None:
        text = text[: int(max_len)]
    return text


def default_responder(prompt_text: str, schema: Any) -> str:
    """Valid JSON for ``schema`` when there is one, else a short plain-text answer."""
    if schema is None:
        return f"Fake answer ({len(prompt_text)} chars of prompt)."
    return json.dumps(example_for_schema(schema, prompt_text))


def _wrong_value(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    kind = _type_of(_resolve(schema, root))
    if kind in ("integer", "number", "boolean", "array", "object"):
        return "not-a-" + kind
    return 12345  # a number where a string is required


def schema_violating_json(schema: Any) -> str:
    """Parseable JSON that does not validate: every property gets a value of the wrong type."""
    root = schema if isinstance(schema, dict) else {}
    node = _resolve(schema, root)
    props = node.get("properties") if isinstance(node, dict) else None
    if not props:
        return json.dumps(["not", "an", "object"])
    return json.dumps({name: _wrong_value(sub, root) for name, sub in props.items()})


def malformed_text(mode: str, schema: Any, good_text: str) -> str:
    """The broken answer text for a ``malformed`` fault."""
    if mode == "not_json":
        return "Sure! Here is my verdict: the answer looks fine {score: high"
    if mode == "schema":
        return schema_violating_json(schema)
    if mode == "truncated":
        return good_text[: max(1, len(good_text) // 2)]
    if mode == "fenced":
        return f"```json\n{good_text}\n```"
    if mode == "empty":
        return ""
    raise ValueError(f"unknown malformed mode {mode!r}")
