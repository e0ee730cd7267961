"""The reader: envelopes and positions, whole-file rejections that say where reading
stopped, and JSON Lines where a bad line costs only that line."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from builders import as_json, as_jsonl, pair, pairs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.core.errors import InputError
from daemon.core.textid import normalise
from daemon.ingest.reader import FILE_FIELDS, LIST_KEYS, parse_bytes
from daemon.ingest.validation import validate_items

LIMITS = {"max_bytes": 1_000_000, "max_depth": 32}
FAST = settings(max_examples=150, deadline=2000, database=None)


def parse(name: str, data: bytes, **limits: int) -> Any:
    return parse_bytes(name, data, **{**LIMITS, **limits})


def rejection(name: str, data: bytes, **limits: int) -> InputError:
    with pytest.raises(InputError) as caught:
        parse(name, data, **limits)
    assert caught.value.path == name
    return caught.value


# -- envelopes -------------------------------------------------------------------------


def test_bare_array_items_are_numbered_by_index() -> None:
    """A JSON array gives its items at positions ``[0]``, ``[1]``..."""
    parsed = parse("sma_qa_pairs.json", as_json(pairs(3)))
    assert [position for position, _ in parsed.items] == ["[0]", "[1]", "[2]"]
    assert [item for _, item in parsed.items] == pairs(3)
    assert parsed.file_fields == {}
    assert parsed.errors == []


@pytest.mark.parametrize("key", LIST_KEYS)
def test_object_envelope_gives_items_under_its_list_key_with_file_fields(key: str) -> None:
    """Any accepted list key gives ``key[i]`` positions plus the file-level fields."""
    envelope = {
        "indicator": "rsi",
        "indicator_name": "Relative Strength Index",
        "session": 4,
        "category": "momentum",
        "generated_by": "agent",
        key: pairs(2),
    }
    parsed = parse("x.json", as_json(envelope))
    assert parsed.items == [(f"{key}[0]", pair(0)), (f"{key}[1]", pair(1))]
    assert parsed.file_fields == {k: envelope[k] for k in FILE_FIELDS}


def test_object_envelope_takes_the_first_list_key_in_order() -> None:
    """With several list keys, ``qa_pairs`` wins over ``data``."""
    parsed = parse("x.json", as_json({"data": [pair(9)], "qa_pairs": [pair(1)]}))
    assert parsed.items == [("qa_pairs[0]", pair(1))]


def test_jsonl_positions_are_file_line_numbers_with_blank_lines_skipped() -> None:
    """JSON Lines items are at ``line N`` of the file; blank and CRLF lines are fine."""
    data = b'\n{"question": "a?", "answer": "b"}\r\n   \n\n{"question": "c?", "answer": "d"}\n'
    parsed = parse("rsi.jsonl", data)
    assert [position for position, _ in parsed.items] == ["line 2", "line 5"]
    assert parsed.errors == []


def test_jsonl_keeps_line_separator_characters_inside_strings() -> None:
    """Only a newline ends a JSON Lines record: U+2028 and U+0085 inside text do not."""
    items = [pair(1, answer="first\u2028second\x85third\x0cfourth"), pair(2)]
    parsed = parse("x.jsonl", as_jsonl(items))
    assert parsed.items == [("line 1", items[0]), ("line 2", items[1])]


def test_utf8_byte_order_mark_is_accepted() -> None:
    """A UTF-8 BOM at the start is not an error."""
    assert parse("x.json", b"\xef\xbb\xbf" + as_json(pairs(1))).items == [("[0]", pair(0))]


# -- whole-file rejection ----------------------------------------------------------------


def test_truncated_json_names_the_line_and_column_where_it_stops() -> None:
    """A file cut off mid-write is rejected at the line and column of the unfinished string."""
    data = b'[\n  {"question": "q?", "answer": "a"},\n  {"question": "r?", "ans'
    error = rejection("cut_qa_pairs.json", data)
    assert error.reason.startswith("not valid JSON")
    assert error.position == "line 3, column 22"
    assert "cut_qa_pairs.json at line 3, column 22" in str(error)


def test_json_syntax_error_in_the_middle_names_its_position() -> None:
    """A missing comma is reported where the parser expected it."""
    error = rejection("x.json", b'[{"question": "q?"\n  "answer": "a"}]')
    assert error.position == "line 2, column 3"
    assert "delimiter" in error.reason


def test_empty_file_is_not_json() -> None:
    """An empty ``.json`` file is rejected at line 1, column 1."""
    assert rejection("x.json", b"").position == "line 1, column 1"


def test_non_utf8_names_line_column_and_byte() -> None:
    """Latin-1 text is rejected at the first undecodable byte: line, column and offset."""
    data = '[\n  {"question": "caf\u00e9?", "answer": "a"}]'.encode("latin-1")
    error = rejection("latin.json", data)
    offset = data.index(b"\xe9")
    assert error.position == f"line 2, column 20 (byte {offset})"
    assert "0xe9" in error.reason
    assert "UTF-8" in error.reason


def test_non_utf8_position_counts_the_byte_order_mark() -> None:
    """After a BOM, the reported byte is the file's own offset and the bad byte itself."""
    data = b"\xef\xbb\xbf[1,\xff]"
    error = rejection("x.json", data)
    assert error.position == "line 1, column 4 (byte 6)"
    assert "0xff" in error.reason


def test_over_the_size_limit_is_rejected_before_parsing() -> None:
    """A file one byte over the limit is rejected whole, naming the limit and the byte."""
    data = as_json(pairs(50))
    error = rejection("big.json", data, max_bytes=len(data) - 1)
    assert f"{len(data):,} bytes" in error.reason
    assert error.position == f"byte {len(data):,}"
    assert parse("big.json", data, max_bytes=len(data)).items  # exactly at the limit is fine


def test_nesting_past_the_limit_names_the_first_bracket_too_deep() -> None:
    """Depth max_depth + 1 is rejected at the bracket that crossed the limit."""
    data = b'[\n  {"question": "q", "answer": "a", "x": [[[1]]]}]'
    assert parse("x.json", data, max_depth=5).items
    error = rejection("x.json", data, max_depth=4)
    assert error.reason == "nested deeper than 4 levels"
    assert error.position == "line 2, column 43"


def test_nesting_far_past_the_recursion_limit_is_an_input_error() -> None:
    """100,000 open brackets (far beyond Python's recursion limit) are an InputError."""
    assert sys.getrecursionlimit() < 100_000
    for data in (b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000):
        error = rejection("deep.json", data)
        assert error.reason == "nested deeper than 32 levels"
        assert error.position == "line 1, column 33" if data[0:1] == b"[" else "line 1, column 161"


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    """The depth locator skips strings, including ones with escaped quotes."""
    data = b'{"note": "x\\"[[[[[[", "qa_pairs": [[[[1]]]]}'
    error = rejection("x.json", data, max_depth=3)
    assert error.position == f"line 1, column {data.index(b'[[[[1') + 3}"


def test_huge_integer_is_an_input_error_with_its_position() -> None:
    """A number longer than Python will convert is rejected with its position, not a crash."""
    data = b'[\n  {"question": "q", "answer": "a", "n": ' + b"7" * 5000 + b"}]"
    error = rejection("x.json", data)
    assert error.position == "line 2, column 41"  # where the 5,000 sevens start
    assert "digits" in error.reason


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b'{"metadata": {"version": 1}}', "an object with keys metadata"),
        (b'{"qa_pairs": {"question": "q"}}', "an object with keys qa_pairs"),
        (b"{}", "an empty object"),
        (b"42", "a number"),
        (b'"text"', "a string"),
        (b"null", "null"),
    ],
)
def test_unknown_envelope_is_rejected_naming_what_was_found(data: bytes, found: str) -> None:
    """An object without a list under a known key, or a scalar, is rejected whole."""
    error = rejection("x.json", data)
    assert error.reason.endswith(f"found {found}")
    assert all(key in error.reason for key in LIST_KEYS)
    assert error.position == "line 1, column 1"


# -- JSON Lines: a bad line is that line's error ----------------------------------------


def test_bad_jsonl_lines_are_errors_and_the_other_lines_are_kept() -> None:
    """Broken, too deep and non-JSON lines are per-line errors; good lines stay items."""
    lines = [
        json.dumps(pair(0)),
        '{"question": "q", "answer": ',
        json.dumps(pair(1)),
        "[" * 40 + "]" * 40,
        "not json at all",
        json.dumps(pair(2)),
    ]
    parsed = parse("x.jsonl", "\n".join(lines).encode())
    assert [p for p, _ in parsed.items] == ["line 1", "line 3", "line 6"]
    errors = {e.position: e.reason for e in parsed.errors}
    assert list(errors) == ["line 2", "line 4", "line 5"]
    assert errors["line 2"].startswith("not valid JSON") and "(column 29)" in errors["line 2"]
    assert errors["line 4"] == "nested deeper than 32 levels (column 33)"
    assert errors["line 5"].startswith("not valid JSON")


def test_jsonl_non_object_lines_are_items_for_validation_to_report() -> None:
    """A line holding ``null`` or a number parses; validation reports it, not the reader."""
    parsed = parse("x.jsonl", b"null\n3\n")
    assert parsed.items == [("line 1", None), ("line 2", 3)]


def test_jsonl_is_rejected_whole_when_not_utf8_or_too_large() -> None:
    """Size and encoding apply to the whole JSON Lines file."""
    assert rejection("x.jsonl", b'{"a": "\xff"}\n').reason.startswith("not UTF-8")
    assert rejection("x.jsonl", as_jsonl(pairs(5)), max_bytes=10).reason.startswith("file is")


# -- properties ---------------------------------------------------------------------------

_json_ish = st.text(alphabet='[]{}",:0123456789.eE+-tfnrul \\\n\r\tab\u00e9\u2028', max_size=300)


@FAST
@given(data=st.binary(max_size=2000), jsonl=st.booleans())
def test_arbitrary_bytes_raise_nothing_but_input_error(data: bytes, jsonl: bool) -> None:
    """Any bytes at all: parsed, or an InputError; never another exception."""
    name = "x.jsonl" if jsonl else "x.json"
    try:
        parse(name, data, max_bytes=1500, max_depth=8)
    except InputError as exc:
        assert exc.path == name and exc.reason


@FAST
@given(text=_json_ish, jsonl=st.booleans())
def test_json_like_text_raises_nothing_but_input_error(text: str, jsonl: bool) -> None:
    """Text made of JSON's own characters: parsed or an InputError with a position."""
    try:
        parse("x.jsonl" if jsonl else "x.json", text.encode(), max_depth=4)
    except InputError as exc:
        assert exc.position is None or exc.position.startswith(("line", "byte"))


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@FAST
@given(value=_json_values, depth=st.integers(min_value=2, max_value=6))
def test_any_json_value_is_items_or_an_input_error(value: Any, depth: int) -> None:
    """Every JSON document is either unwrapped into items or rejected with InputError."""
    try:
        parsed = parse("x.json", json.dumps(value).encode(), max_depth=depth)
    except InputError:
        return
    if isinstance(value, dict):
        value = next(value[k] for k in LIST_KEYS if isinstance(value.get(k), list))
    assert [item for _, item in parsed.items] == value


# Text a pair may hold: no unpaired surrogates (not Unicode), not blank, already trimmed.
_text = (
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60)
    .map(str.strip)
    .filter(bool)
)
_pair = st.fixed_dictionaries(
    {"question": _text, "answer": _text},
    optional={
        "id": st.integers(0, 10**6) | _text,
        "indicator": _text,
        "difficulty": st.sampled_from(["beginner", "intermediate", "advanced"]),
        "type": st.sampled_from(["definition", "calculation", "signal"]),
        "tags": st.lists(_text, max_size=3),
        "session": st.integers(0, 10_000),
        "x_custom": _json_values,
    },
)
_unique_pairs = st.lists(
    _pair, max_size=8, unique_by=lambda p: (" ".join(p["question"].split()), p["answer"])
).filter(
    # unique after the hash's normalisation, which also folds Unicode forms
    lambda ps: len({(normalise(p["question"]), normalise(p["answer"])) for p in ps}) == len(ps)
)


@settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(items=_unique_pairs, envelope=st.sampled_from(["array", "object", "jsonl"]))
def test_valid_pairs_round_trip_through_every_envelope(
    items: list[dict[str, Any]], envelope: str
) -> None:
    """Valid pairs come back unchanged, in order, from an array, an object or JSON Lines."""
    indexes = range(len(items))
    if envelope == "jsonl":
        name, data, positions = "x.jsonl", as_jsonl(items), [f"line {i + 1}" for i in indexes]
    elif envelope == "object":
        name, data = "x.json", as_json({"questions": items})
        positions = [f"questions[{i}]" for i in indexes]
    else:
        name, data, positions = "x.json", as_json(items), [f"[{i}]" for i in indexes]
    parsed = parse(name, data, max_depth=64)
    records, errors = validate_items(
        "outbox/a/" + name, parsed, max_question_chars=1000, max_answer_chars=1000
    )
    assert errors == []
    assert [r.position for r in records] == positions
    for record, item in zip(records, items, strict=True):
        assert (record.question, record.answer) == (item["question"], item["answer"])
        assert record.tags == item.get("tags", [])
        assert record.item_id == (str(item["id"]) if "id" in item else None)
        if "x_custom" in item:
            assert record.extra == {"x_custom": item["x_custom"]}


@pytest.mark.parametrize("name", ["x.json", "x.jsonl"])
@pytest.mark.parametrize(
    ("extra", "suspect"),
    [
        ("", False),
        (', "score": 0.5', False),
        (', "score": NaN', True),
        (', "m": {"v": [1e999]}', True),
        (', "m": {"a": 1, "a": 2}', True),
    ],
)
def test_the_reader_flags_files_that_may_hold_what_json_cannot(
    name: str, extra: str, suspect: bool
) -> None:
    """A key named twice, NaN or Infinity anywhere marks the file for validation to look
    for (and report) at each item; a clean file is not walked a second time."""
    line = '{"question": "q?", "answer": "a."' + extra + "}"
    data = (line + "\n" + json.dumps(pair(2)) + "\n") if name.endswith("l") else f"[{line}]"
    assert parse(name, data.encode()).suspect is suspect
