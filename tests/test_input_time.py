"""No input can cost more than linear time (issue 11): every parser of agent-controlled
text (names, paths, indicators, pair fields, ``status.txt``, assignments, Q&A bytes,
answers the rubric reads) finishes a long adversarial string at once.

The strings repeat a short unit built from the characters and words the patterns look
for, about 100,000 characters long, so a quadratic parser would take minutes and an
exponential one forever; the bound is loose enough for a busy 2-core machine. Where a
pattern was rewritten for speed, a property checks it still means what it meant.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core.catalog import (
    drop_qa_suffixes,
    load_catalog,
    normalize_name,
    without_trailing_number,
)
from daemon.core.config_sections import CoverageConfig
from daemon.core.errors import InputError
from daemon.core.textid import printable
from daemon.ingest.agent_files import parse_status
from daemon.ingest.feedback import feedback_paths, refusal_paths
from daemon.ingest.layout import assignment_session, classify
from daemon.ingest.reader import ParsedFile, parse_bytes
from daemon.ingest.validation import indicator_from_path, session_from_path, validate_items
from daemon.plan import assignments
from daemon.providers.scorers import rubric

CATALOG = load_catalog()
COVERAGE = CoverageConfig()
LENGTH = 100_000
BOUND_SECONDS = 3.0  # linear work here takes milliseconds; quadratic, minutes

#: What the patterns look for: digits and separators, brackets, keywords and markup.
TOKENS = [
    "1", "9", "_", "_1", "-", " ", "\t", "/", "\\", ".", ":", ";", ",", "(", ")", "[", "]",
    "{", "}", '"', "#", "## ", "- ", " - ", " — ", "*", "+", "a", "A", "x", "é", "\n",
    "session_", "session-", "Session ", "qa", "_qa", "_pairs", "q_a", ".json", ".jsonl",
    "rsi", "RSI", "Sessions Complete:", "Current Session:", "Last Updated:", "Notes:",
    " more pairs", "types:", "difficulties:", "gap fill", "[todo", "TODO", "I am sorry",
    "=", "%", "above ", "14-period", "NaN", "Infinity", "1e999", "-assignment.md",
]  # fmt: skip

_unit = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=4).map("".join)


@st.composite
def adversarial(draw: st.DrawFn) -> str:
    """A short unit repeated to about LENGTH characters, then one odd character."""
    unit = draw(_unit)
    tail = draw(st.sampled_from(["", "x", "!", "(", "\n", "/", "]", "\x00"]))
    return unit * (LENGTH // len(unit)) + tail


def timed(what: str, call: Callable[[], Any]) -> None:
    """Run ``call``; an InputError is a fine answer, time past the bound is not."""
    started = time.monotonic()
    with contextlib.suppress(InputError):
        call()
    took = time.monotonic() - started
    assert took < BOUND_SECONDS, f"{what} took {took:.1f}s"


def _parsed_pair(text: str) -> ParsedFile:
    item = {"question": "q?", "answer": "a.", "indicator": text, "type": text, "x": text}
    return ParsedFile(items=[("[0]", item)], file_fields={"indicator": text, "category": text})


PARSERS: dict[str, Callable[[str], Any]] = {
    "normalize_name": normalize_name,
    "catalog.resolve": CATALOG.resolve,
    "without_trailing_number": without_trailing_number,
    "indicator_from_path": indicator_from_path,
    "session_from_path": session_from_path,
    "parse_status": parse_status,
    "assignments.parse": lambda t: assignments.parse(50, t, CATALOG, COVERAGE),
    "assignment_session": assignment_session,
    "classify": lambda t: classify(Path("/r"), Path("/r/outbox/a") / t.replace("\x00", "")),
    "printable": printable,
    "feedback names": lambda t: (
        feedback_paths(Path("/i"), "a", "outbox/a/" + t, "0" * 64),
        refusal_paths(Path("/i"), "a", "outbox/a/" + t),
    ),
    "parse_bytes json": lambda t: parse_bytes("x.json", t.encode(), max_bytes=10**7, max_depth=32),
    "parse_bytes jsonl": lambda t: parse_bytes(
        "x.jsonl", t.encode(), max_bytes=10**7, max_depth=32
    ),
    "validate_items": lambda t: validate_items(
        "outbox/a/session_02/" + t[:200] + ".json",
        _parsed_pair(t),
        max_question_chars=10**6,
        max_answer_chars=10**6,
        resolve_indicator=lambda s: (
            None if (found := CATALOG.resolve(s)) is None else (found.id, found.session)
        ),
    ),
    "rubric": lambda t: (
        rubric.completeness_score(t),
        rubric.specificity_score(t),
        rubric.structure_score(t, t),
        rubric.red_flags(t, t, 0.5),
    ),
}


@settings(max_examples=25, deadline=None, database=None)
@given(text=adversarial())
def test_every_parser_reads_a_long_adversarial_string_in_linear_time(text: str) -> None:
    """Each parser of agent text finishes ~100,000 adversarial characters at once."""
    for what, parse in PARSERS.items():
        timed(what, lambda parse=parse: parse(text))  # type: ignore[misc]


@pytest.mark.parametrize(
    "text",
    [
        "rsi_" + "1" * 40 + "x",  # the indicator that hung the daemon for good
        "session_" + "1" * 24 + "/x",  # ~20 s a lookup before
        "x" + "_qa" * 30_000,  # the suffix loop rescanned the whole key each time
        "A" + "a" * 40_000,  # a long capitalised word in an answer (rubric parameters)
        "[todo" * 20_000,  # a placeholder marker that never closes
        "# a" + " " * 50_000 + "b",  # a heading padded with spaces
    ],
)
def test_the_inputs_that_used_to_hang_are_read_at_once(text: str) -> None:
    """The cases found by the fuzz run and the audit, one by one."""
    for what, parse in PARSERS.items():
        timed(what, lambda parse=parse: parse(text))  # type: ignore[misc]


# -- the rewritten patterns mean what they meant ------------------------------------------

_OLD_TRAILING_NUMBER = re.compile(r"(?:_?[0-9]+)+$")


@settings(max_examples=500, deadline=None, database=None)
@given(key=st.text(alphabet="ab_129", max_size=14))
def test_trailing_number_scan_matches_the_old_pattern(key: str) -> None:
    """The linear scan strips exactly what ``(?:_?[0-9]+)+$`` stripped."""
    assert without_trailing_number(key) == _OLD_TRAILING_NUMBER.sub("", key).rstrip("_")


_OLD_QA_SUFFIX = re.compile(r"_(?:q_?a_pairs|q_?a|pairs)$")


@settings(max_examples=500, deadline=None, database=None)
@given(parts=st.lists(st.sampled_from(["x", "_", "qa", "q_a", "pairs", "_qa", "a", "q"])))
def test_qa_suffix_stripping_matches_the_old_loop(parts: list[str]) -> None:
    """Suffixes are dropped as the old search-and-cut loop dropped them."""
    key = old = "".join(parts)
    while (suffix := _OLD_QA_SUFFIX.search(old)) is not None:
        old = old[: suffix.start()]
    assert drop_qa_suffixes(key) == old


_OLD_PARAMETER = re.compile(r"\b[A-Z][A-Za-z]*_?[a-z{]*\b\s*\(|\b(alpha|beta|sigma|N|k)\b\s*=")
_OLD_DASH = re.compile(r"\s+[—–-]\s+")
_OLD_BULLET = re.compile(r"^\s*[-*+]\s+(.+?)\s*$")
_OLD_SECTION = re.compile(r"^##\s+(.+?)\s*$")


@settings(max_examples=1000, deadline=None, database=None)
@given(text=st.text(alphabet="Aab_{( =Nk-*+#—\t", max_size=16))
def test_rewritten_patterns_find_what_the_old_ones_found(text: str) -> None:
    """The possessive rubric pattern, the dash split and the line patterns of
    assignments agree with the backtracking originals on short text."""
    old, new = _OLD_PARAMETER.search(text), rubric._PARAMETER.search(text)
    assert (old and old.span()) == (new and new.span())
    assert _OLD_DASH.split(text) == assignments._DASH.split(text)
    for before, after in ((_OLD_BULLET, assignments._BULLET), (_OLD_SECTION, assignments._SECTION)):
        was, now = before.match(text), after.match(text)
        assert (was and was.group(1).strip()) == (now and now.group(1).strip())
