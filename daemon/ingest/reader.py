"""Turn the bytes of a Q&A file into raw items with their positions.

A file that cannot be read at all (too large, not UTF-8, not JSON, nested too deep, an
unknown envelope) raises InputError naming where reading stopped. A bad line of a
JSON Lines file is only that line's error: the other lines still count.
"""

from __future__ import annotations

import codecs
import json
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from daemon.core.errors import InputError
from daemon.core.records import PairError

#: Keys under which an object envelope may hold its list of pairs.
LIST_KEYS = ("qa_pairs", "pairs", "questions", "items", "data")
#: File-level fields an object envelope may carry for all its pairs.
FILE_FIELDS = ("indicator", "indicator_name", "session", "category")

#: How a JSON value that is not an envelope is named in the error.
_JSON_TYPES = {
    type(None): "null",
    bool: "true/false",
    int: "a number",
    float: "a number",
    str: "a string",
}
_UNPARSED = object()  # json.loads gave up on the nesting: locate it by scanning
_BLANK = re.compile(r"[ \t\n\r]*")  # JSON's whitespace


class DuplicateKeys(dict[str, Any]):
    """A JSON object that named a key more than once (``json`` would silently keep the
    last value); validation reports it at its position instead."""

    def __init__(self, pairs: list[tuple[str, Any]], duplicates: list[str]) -> None:
        super().__init__(pairs)
        self.duplicates = duplicates


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    seen: set[str] = set()
    repeated: list[str] = []
    for key, _ in pairs:
        if key in seen and key not in repeated:
            repeated.append(key)
        seen.add(key)
    return DuplicateKeys(pairs, repeated)


@dataclass
class ParsedFile:
    """Raw items of one file, with positions such as ``qa_pairs[3]`` or ``line 7``."""

    items: list[tuple[str, Any]] = field(default_factory=list)
    file_fields: dict[str, Any] = field(default_factory=dict)
    errors: list[PairError] = field(default_factory=list)
    # Whether some value JSON cannot hold faithfully (a key named twice, NaN or
    # Infinity) may be in the items; False only when the reader saw there is none.
    suspect: bool = True


def parse_bytes(name: str, data: bytes, *, max_bytes: int, max_depth: int) -> ParsedFile:
    """Parse a ``.json`` or ``.jsonl`` file's content."""
    if len(data) > max_bytes:
        raise InputError(
            name,
            f"file is {len(data):,} bytes, over the limit of {max_bytes:,}",
            f"byte {max_bytes + 1:,}",
        )
    text = _decode(name, data)
    if name.lower().endswith(".jsonl"):
        return _parse_lines(name, text, max_depth)
    value, suspect = _load(name, text, max_depth, line_offset=0)
    parsed = _unwrap(name, value, text)
    parsed.suspect = suspect
    return parsed


def _decode(name: str, data: bytes) -> str:
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start + bom  # positions count from the file's first byte
        line = data.count(b"\n", 0, start) + 1
        column = start - max(data.rfind(b"\n", 0, start) + 1, bom) + 1
        raise InputError(
            name,
            f"not UTF-8 text (byte 0x{data[start]:02x} cannot be decoded)",
            f"line {line}, column {column} (byte {start})",
        ) from exc


def _load(name: str, text: str, max_depth: int, line_offset: int) -> tuple[Any, bool]:
    """The value of one JSON text, and whether it is suspect (see ParsedFile)."""
    try:
        value = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise InputError(
            name,
            f"not valid JSON: {exc.msg}",
            f"line {exc.lineno + line_offset}, column {exc.colno}",
        ) from exc
    except ValueError as exc:  # an integer longer than int() accepts
        line, column = _long_number_at(text)
        raise InputError(
            name,
            f"not usable JSON: a number has more than {sys.get_int_max_str_digits():,} digits",
            f"line {line + line_offset}, column {column}",
        ) from exc
    except RecursionError:
        value = _UNPARSED  # nested far beyond any limit: locate it below
    depth, suspect = (max_depth + 1, True) if value is _UNPARSED else _shape(value)
    if depth > max_depth:
        where = _too_deep_at(text, max_depth)
        if where is None:  # the parser's own limit is below ours
            raise InputError(name, "nested too deeply for the JSON parser")
        line, column = where
        raise InputError(
            name,
            f"nested deeper than {max_depth} levels",
            f"line {line + line_offset}, column {column}",
        )
    return value, suspect


def _long_number_at(text: str) -> tuple[int, int]:
    """Line and column of the first integer with more digits than ``int()`` accepts."""
    # Entered only at the start of a run of digits: linear, not quadratic, in the text.
    match = re.search(rf"(?<![0-9])[0-9]{{{sys.get_int_max_str_digits() + 1}}}", text)
    return _line_column(text, match.start() if match else 0)


def _line_column(text: str, index: int) -> tuple[int, int]:
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def _skip_blank(text: str, index: int) -> int:
    match = _BLANK.match(text, index)
    return match.end() if match else index


def _second_key_at(text: str, key: str) -> tuple[int, int] | None:
    """Line and column where the top-level object names ``key`` a second time.

    Only called for a document that parsed: its members are stepped over by the C
    parser, so this is as fast as parsing it again.
    """
    scan = json.JSONDecoder().raw_decode
    index = _skip_blank(text, 0)
    if not text.startswith("{", index):
        return None
    index, seen = index + 1, 0
    try:
        while True:
            start = _skip_blank(text, index)
            name, index = scan(text, start)
            if name == key and (seen := seen + 1) == 2:
                return _line_column(text, start)
            index = _skip_blank(text, index) + 1  # past the ":"
            _, index = scan(text, _skip_blank(text, index))
            index = _skip_blank(text, index) + 1  # past the ","
    except json.JSONDecodeError:
        return None


def _shape(value: Any) -> tuple[int, bool]:
    """How deep ``value`` nests, and whether it holds a key named twice or a float that
    is not finite (one walk, so a clean file costs no second look)."""
    deepest, suspect, stack = 0, False, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            suspect = suspect or isinstance(node, DuplicateKeys)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(node, float) and not math.isfinite(node):
            suspect = True
    return deepest, suspect


def _too_deep_at(text: str, max_depth: int) -> tuple[int, int] | None:
    """Line and column of the first bracket past ``max_depth`` (strings skipped)."""
    depth, line, column, in_string, escaped = 0, 1, 0, False, False
    for char in text:
        column += 1
        if char == "\n":
            line, column = line + 1, 0
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return line, column
        elif char in "]}":
            depth -= 1
    return None


def _unwrap(name: str, value: Any, text: str) -> ParsedFile:
    if isinstance(value, DuplicateKeys):
        key = value.duplicates[0]
        where = _second_key_at(text, key)
        raise InputError(
            name,
            f"the top-level object names the key {key!r} twice; JSON would keep only the"
            " last value, so the file is not read (name each key once)",
            f"line {where[0]}, column {where[1]}" if where else None,
        )
    if isinstance(value, list):
        return ParsedFile(items=[(f"[{i}]", item) for i, item in enumerate(value)])
    if isinstance(value, dict):
        for key in LIST_KEYS:
            if isinstance(value.get(key), list):
                return ParsedFile(
                    items=[(f"{key}[{i}]", item) for i, item in enumerate(value[key])],
                    file_fields={k: value[k] for k in FILE_FIELDS if k in value},
                )
    found = (
        _JSON_TYPES.get(type(value), type(value).__name__)
        if not isinstance(value, dict)
        else ("an object with keys " + ", ".join(sorted(value)[:8]) if value else "an empty object")
    )
    raise InputError(
        name,
        f"expected a list of pairs or an object holding one under "
        f"{', '.join(LIST_KEYS)}; found {found}",
        "line 1, column 1",
    )


def _parse_lines(name: str, text: str, max_depth: int) -> ParsedFile:
    parsed = ParsedFile(suspect=False)
    # Only "\n" ends a line: JSON text may hold U+2028 and other characters that
    # str.splitlines() would split on.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value, suspect = _load(name, line, max_depth, number - 1)
            parsed.items.append((f"line {number}", value))
            parsed.suspect = parsed.suspect or suspect
        except InputError as exc:
            parsed.errors.append(PairError(f"line {number}", exc.reason + _column(exc)))
    return parsed


def _column(exc: InputError) -> str:
    column = (exc.position or "").partition(", ")[2]
    return f" ({column})" if column else ""
