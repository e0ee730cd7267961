"""Validation: every invalid item is reported with its position and a reason naming the
field, every valid one is kept, and indicator/session fall back from pair to file to path."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from builders import pair, pairs
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core.records import PairError
from daemon.core.textid import normalise, pair_hash
from daemon.ingest.reader import ParsedFile
from daemon.ingest.validation import (
    KNOWN_FIELDS,
    indicator_from_path,
    session_from_path,
    validate_items,
)

PATH = "outbox/agent1/session_03/sma_qa_pairs.json"
FAST = settings(max_examples=150, deadline=None, database=None)


def check(
    items: list[Any],
    file_fields: dict[str, Any] | None = None,
    path: str = PATH,
    **kwargs: Any,
) -> tuple[list[Any], list[PairError]]:
    parsed = ParsedFile(
        items=[(f"[{i}]", item) for i, item in enumerate(items)], file_fields=file_fields or {}
    )
    limits = {"max_question_chars": 100, "max_answer_chars": 200, **kwargs}
    return validate_items(path, parsed, **limits)


def only_error(item: Any, **kwargs: Any) -> str:
    """The reason of the one error ``item`` gives (a valid sibling is imported)."""
    records, errors = check([pair(99), item], **kwargs)
    assert [r.position for r in records] == ["[0]"]
    assert [e.position for e in errors] == ["[1]"]
    return errors[0].reason


# -- per-item errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "field", "words"),
    [
        ({"question": 42, "answer": "a"}, "question", "valid string"),
        ({"question": "q", "answer": ["a"]}, "answer", "valid string"),
        ({"question": "q", "answer": "a", "tags": 7}, "tags", "valid list"),
        ({"question": "q", "answer": "a", "tags": ["ok", 3]}, "tags.1", "valid string"),
        ({"question": "q", "answer": "a", "sources": {"url": "x"}}, "sources", "valid list"),
        ({"question": "q", "answer": "a", "session": "three"}, "session", "integer"),
        ({"question": "q", "answer": "a", "session": -1}, "session", "greater than"),
        ({"question": "q", "answer": "a", "indicator": 5}, "indicator", "valid string"),
        ({"question": "q", "answer": "a", "id": 1.5}, "id", "valid"),
    ],
)
def test_wrong_types_are_per_item_errors_naming_the_field(
    item: dict[str, Any], field: str, words: str
) -> None:
    """A field of the wrong type is that item's error; its reason starts with the field."""
    reason = only_error(item)
    assert reason.startswith(f"{field}")
    assert words in reason


@pytest.mark.parametrize("blank", ["", "   ", "\n\t "])
@pytest.mark.parametrize("field", ["question", "answer"])
def test_empty_or_whitespace_text_is_an_error_naming_the_field(field: str, blank: str) -> None:
    """An empty or whitespace-only question or answer is not a pair."""
    assert only_error({**pair(1), field: blank}) == f"{field}: must not be empty"


def test_missing_answer_is_an_error_naming_the_field() -> None:
    """A pair without an answer is reported as ``answer: Field required``."""
    assert only_error({"question": "What is RSI?"}) == "answer: Field required"


def test_every_problem_of_one_item_is_in_its_reason() -> None:
    """Several bad fields of one item are all named, separated by ``;``."""
    reason = only_error({"question": 1, "tags": 2})
    assert [part.split(":")[0] for part in reason.split("; ")] == ["question", "answer", "tags"]


def test_too_long_answer_and_question_name_the_limit() -> None:
    """Text over the configured limit is an error naming field, length and limit."""
    assert only_error({**pair(1), "answer": "x" * 201}) == (
        "answer: is 201 characters, over the limit of 200"
    )
    assert only_error({**pair(1), "question": "y" * 150}) == (
        "question: is 150 characters, over the limit of 100"
    )
    records, errors = check([{**pair(1), "answer": "x" * 200}])
    assert len(records) == 1 and errors == []


def test_length_limit_counts_text_after_trimming() -> None:
    """Whitespace around the text is trimmed before the limit applies."""
    records, errors = check([{"question": "  q  ", "answer": "a" * 200 + "\n\n"}])
    assert errors == [] and records[0].question == "q"


@pytest.mark.parametrize(("item", "found"), [(3, "int"), ("text", "str"), (None, "NoneType")])
def test_an_item_that_is_not_an_object_is_an_error(item: Any, found: str) -> None:
    """Scalars in the list are reported, not imported."""
    assert only_error(item) == f"expected an object, found {found}"


def test_a_pair_repeated_in_one_file_is_reported_once() -> None:
    """The same pair twice in a file (whitespace aside) is imported once, the repeat reported."""
    again = {"question": "  What does indicator 1   measure? ", "answer": pair(1)["answer"]}
    records, errors = check([pair(1), pair(2), again])
    assert [r.position for r in records] == ["[0]", "[1]"]
    assert errors == [PairError("[2]", "repeats an earlier pair of this file")]


def test_bad_file_fields_are_reported_and_pairs_still_imported() -> None:
    """A bad file-level field is a ``file fields`` error; the pairs are still valid."""
    records, errors = check(pairs(2), file_fields={"session": "soon", "indicator": "rsi"})
    assert len(records) == 2
    assert [e.position for e in errors] == ["file fields"]
    assert errors[0].reason.startswith("session:")


def test_unknown_key_holding_an_unpaired_surrogate_is_an_error_naming_the_key() -> None:
    """Text that is not valid Unicode cannot be stored: that item is reported, not crashed on."""
    reason = only_error({**pair(1), "note": ["ok", "\udfff"]})
    assert reason.startswith("note: holds text that is not valid Unicode")
    assert "valid string" in only_error({**pair(1), "note\ud800": "x"})  # pydantic's check


def test_unpaired_surrogate_in_the_question_is_an_error() -> None:
    """pydantic refuses text that is not Unicode in known fields."""
    assert only_error({**pair(1), "question": "bad \ud800"}).startswith("question:")


# -- what a valid pair becomes ---------------------------------------------------------


def test_valid_pair_keeps_known_fields_and_unknown_keys_verbatim() -> None:
    """Known fields are typed, ``tags`` may be one string, and unknown keys go to extra."""
    item = {
        "question": " What is the SMA? ",
        "answer": "The mean of the last n closes.",
        "id": 7,
        "difficulty": "beginner",
        "type": "definition",
        "tags": "trend",
        "sources": ["https://example.org/sma"],
        "formula": {"sma": "sum(close[-n:]) / n", "n": [10, 20]},
        "Notes": None,
    }
    (record,), errors = check([item])
    assert errors == []
    assert record.question == "What is the SMA?"
    assert record.item_id == "7"
    assert record.tags == ["trend"]
    assert record.sources == ["https://example.org/sma"]
    assert (record.difficulty, record.type) == ("beginner", "definition")
    assert record.extra == {"formula": item["formula"], "Notes": None}
    assert record.hash == pair_hash(item["question"], item["answer"])


def test_indicator_comes_from_pair_then_file_then_file_name() -> None:
    """The pair's indicator wins, then the file's, then the file name's stem."""
    items = [pair(1, indicator="ema"), pair(2)]
    (own, inherited), _ = check(items, file_fields={"indicator": "rsi"})
    assert (own.indicator, inherited.indicator) == ("ema", "rsi")
    (own, from_name), _ = check(items)
    assert (own.indicator, from_name.indicator) == ("ema", "sma")


def _catalog(known: dict[str, tuple[str, int]]) -> Any:
    """A resolver that knows these spellings (lower-cased) and nothing else."""
    return lambda text: known.get(text.lower())


def test_the_first_spelling_the_catalog_knows_wins_pair_then_file_then_path() -> None:
    """Pair field, file field, file-level name, then the path: the first known one is
    the indicator, with the catalog's session when nothing else gives one."""
    resolve = _catalog({"ema": ("ema", 2), "relative strength index": ("rsi", 4)})
    items = [pair(1, indicator="EMA"), pair(2, indicator="no-such-thing"), pair(3)]
    fields = {"indicator": "rsi-ish", "indicator_name": "Relative Strength Index"}
    records, _ = check(items, file_fields=fields, path="outbox/a/x.json", resolve_indicator=resolve)
    assert [(r.indicator, r.session) for r in records] == [("ema", 2), ("rsi", 4), ("rsi", 4)]


def test_an_indicator_no_spelling_resolves_is_kept_as_written() -> None:
    """Unknown names are kept (and reported later), never dropped."""
    resolve = _catalog({})
    records, _ = check([pair(1, indicator="Mystery"), pair(2)], resolve_indicator=resolve)
    assert [r.indicator for r in records] == ["Mystery", "sma"]


def test_the_session_folder_wins_over_the_catalog_session() -> None:
    """A gap-fill file under ``session_45/`` keeps session 45 while naming indicator rsi."""
    resolve = _catalog({"rsi": ("rsi", 4)})
    (record,), _ = check(
        [pair(1)], path="outbox/a/session_45/rsi_qa_pairs.json", resolve_indicator=resolve
    )
    assert (record.indicator, record.session) == ("rsi", 45)


def test_session_comes_from_pair_then_file_then_session_folder() -> None:
    """The pair's session wins, then the file's (even 0), then ``session_NN/``."""
    items = [pair(1, session=9), pair(2)]
    (own, inherited), _ = check(items, file_fields={"session": 4})
    assert (own.session, inherited.session) == (9, 4)
    (_, from_folder), _ = check(items)
    assert from_folder.session == 3
    (_, zero), _ = check(items, file_fields={"session": 0})
    assert zero.session == 0
    (_, none), _ = check(items, path="outbox/agent1/sma_qa_pairs.json")
    assert none.session is None


def test_category_comes_from_pair_then_file() -> None:
    """A file-level category applies to pairs without their own."""
    records, _ = check([pair(1, category="trend"), pair(2)], file_fields={"category": "momentum"})
    assert [r.category for r in records] == ["trend", "momentum"]


@pytest.mark.parametrize(
    ("path", "indicator"),
    [
        ("outbox/a/sma_qa_pairs.json", "sma"),
        ("outbox/a/session_02/RSI-QA-Pairs.json", "RSI"),
        ("outbox/a/bollinger_bands_qa.json", "bollinger_bands"),
        ("outbox/a/macd_pairs.jsonl", "macd"),
        ("outbox/a/obv.jsonl", "obv"),
        ("outbox/a/qa_pairs.json", None),
        ("outbox/a/pairs.jsonl", None),
    ],
)
def test_indicator_from_path(path: str, indicator: str | None) -> None:
    """The file name without ``_qa_pairs``/``_qa``/``_pairs`` is the indicator (if any)."""
    assert indicator_from_path(path) == indicator


@pytest.mark.parametrize(
    ("path", "session"),
    [
        ("outbox/a/session_02/sma_qa_pairs.json", 2),
        ("outbox/a/Session-17/x.json", 17),
        ("outbox/a/session5/deep/x.json", 5),
        ("outbox/a/sma_qa_pairs.json", None),
        ("outbox/a/session_02.json", None),
        ("outbox/a/old_session_02/x.json", None),
    ],
)
def test_session_from_path(path: str, session: int | None) -> None:
    """Only a ``session_NN`` folder on the path gives a session."""
    assert session_from_path(path) == session


# -- the content hash ------------------------------------------------------------------


def test_pair_hash_is_stable() -> None:
    """The hash is sha256 of the normalised question, a 0x1F separator and the answer."""
    expected = hashlib.sha256(b"What is RSI?\x1fA momentum oscillator.").hexdigest()
    # Pinned: a change here re-keys every stored pair (and so imports them all again).
    assert expected == "dbc56b7ad25baa2f29a97c0cb6d7792096c3600ee385ac7cbfd5039411fe9f7c"
    assert pair_hash("What is RSI?", "A momentum oscillator.") == expected
    assert pair_hash("  What is\tRSI?\n", "A  momentum oscillator. ") == expected


def test_pair_hash_separates_question_from_answer() -> None:
    """Moving words between question and answer changes the hash."""
    assert pair_hash("a b", "c") != pair_hash("a", "b c")


def test_normalise_folds_unicode_forms() -> None:
    """Composed and decomposed accents are the same text."""
    assert normalise("cafe\u0301") == normalise("caf\u00e9")


_word = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc")),
    min_size=1,
    max_size=8,
)
_space = st.text(alphabet=" \t\n\r\u00a0\u2003\u3000", min_size=1, max_size=4)


@FAST
@given(
    q_words=st.lists(_word, min_size=1, max_size=6),
    a_words=st.lists(_word, min_size=1, max_size=6),
    spaces=st.lists(_space, min_size=14, max_size=14),
)
def test_pair_hash_ignores_whitespace_differences(
    q_words: list[str], a_words: list[str], spaces: list[str]
) -> None:
    """Runs of any whitespace, and whitespace around the text, do not change the hash."""

    def spaced(words: list[str], pad: list[str]) -> str:
        return pad[0] + "".join(w + pad[i + 1] for i, w in enumerate(words))

    plain = pair_hash(" ".join(q_words), " ".join(a_words))
    assert pair_hash(spaced(q_words, spaces[:7]), spaced(a_words, spaces[7:])) == plain
    assert pair_hash(" ".join(q_words), " ".join(a_words)) == plain  # stable in a run


# -- properties of validate_items ------------------------------------------------------

_text = st.text(min_size=1, max_size=30).filter(lambda t: t.strip())
_valid = st.fixed_dictionaries({"question": _text, "answer": _text})
_invalid = st.one_of(
    st.integers(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.fixed_dictionaries({"question": _text}),
    st.fixed_dictionaries({"question": st.integers(), "answer": _text}),
    st.fixed_dictionaries({"question": st.sampled_from(["", "  ", "\n"]), "answer": _text}),
    st.fixed_dictionaries({"question": _text, "answer": _text, "tags": st.integers()}),
    st.fixed_dictionaries({"question": _text, "answer": _text.map(lambda t: "x" * 201 + t)}),
)
_tagged = st.lists(
    st.one_of(_valid.map(lambda v: ("valid", v)), _invalid.map(lambda v: ("invalid", v))),
    max_size=12,
)


@FAST
@given(tagged=_tagged)
def test_validate_items_partitions_items_into_pairs_and_errors(
    tagged: list[tuple[str, Any]],
) -> None:
    """Each item is exactly one of pair or error; errors sit at the bad or repeated items."""
    items = [item for _, item in tagged]
    records, errors = check(items)
    assert len(records) + len(errors) == len(items)
    got_pairs = [r.position for r in records]
    got_errors = [e.position for e in errors]
    assert not set(got_pairs) & set(got_errors)
    seen: set[str] = set()
    want_pairs, want_errors = [], []
    for i, (kind, item) in enumerate(tagged):
        digest = pair_hash(item["question"], item["answer"]) if kind == "valid" else None
        if digest is None or digest in seen:
            want_errors.append(f"[{i}]")
        else:
            seen.add(digest)
            want_pairs.append(f"[{i}]")
    assert got_pairs == want_pairs
    assert got_errors == want_errors
    assert all(e.reason for e in errors)


_key = st.text(min_size=1, max_size=12).filter(
    lambda k: k not in KNOWN_FIELDS and not any("\ud800" <= c <= "\udfff" for c in k)
)
_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=("Cs",))),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet=st.characters(exclude_categories=("Cs",))), inner)
    ),
    max_leaves=10,
)


@FAST
@given(extra=st.dictionaries(_key, _value, max_size=5))
def test_unknown_keys_survive_in_extra_verbatim(extra: dict[str, Any]) -> None:
    """Whatever unknown keys a pair carries come back in ``extra`` unchanged."""
    (record,), errors = check([{**pair(1), **extra}])
    assert errors == []
    assert record.extra == extra
