"""Validate raw items into pairs with pydantic: every valid pair is kept, every invalid
one reported with its position and reason."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from daemon.core.errors import InputError
from daemon.core.numbers import MAX_SESSION, bounded_int
from daemon.core.records import PairError, PairRecord
from daemon.core.textid import pair_hash
from daemon.ingest.reader import DuplicateKeys, ParsedFile

_SESSION_DIR = re.compile(r"(?:^|/)session[_-]?([0-9]+)(?:/|$)", re.IGNORECASE)
_QA_SUFFIX = re.compile(r"(?:^|[_-])(?:qa[_-]pairs|qa|pairs)$", re.IGNORECASE)

#: Known pair fields; any other key is kept verbatim in ``extra``.
KNOWN_FIELDS = frozenset(
    {
        "question",
        "answer",
        "id",
        "indicator",
        "category",
        "difficulty",
        "type",
        "tags",
        "sources",
        "session",
    }
)


class QAPair(BaseModel):
    """One question/answer pair as an agent writes it."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    question: StrictStr = Field(min_length=1)
    answer: StrictStr = Field(min_length=1)
    id: StrictStr | int | None = None
    indicator: StrictStr | None = None
    category: StrictStr | None = None
    difficulty: StrictStr | None = None
    type: StrictStr | None = None
    tags: list[StrictStr] = Field(default_factory=list)
    sources: list[StrictStr] = Field(default_factory=list)
    session: int | None = Field(default=None, ge=0, le=MAX_SESSION)

    @field_validator("tags", "sources", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("question", "answer")
    @classmethod
    def _within_limit(cls, value: str, info: ValidationInfo) -> str:
        limit = (info.context or {}).get(f"max_{info.field_name}_chars")
        if limit is not None and len(value) > limit:
            raise ValueError(f"is {len(value):,} characters, over the limit of {limit:,}")
        return value


class FileFields(BaseModel):
    """File-level fields of an object envelope, applied to pairs that lack them."""

    model_config = ConfigDict(str_strip_whitespace=True)

    indicator: StrictStr | None = None
    indicator_name: StrictStr | None = None
    session: int | None = Field(default=None, ge=0, le=MAX_SESSION)
    category: StrictStr | None = None


def indicator_from_path(relpath: str) -> str | None:
    """``outbox/a/session_02/sma_qa_pairs.json`` -> ``sma``."""
    stem = relpath.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return _QA_SUFFIX.sub("", stem) or None


def session_from_path(relpath: str) -> int | None:
    """``outbox/a/session_02/x.json`` -> 2; InputError when the number is out of range."""
    match = _SESSION_DIR.search(relpath.rsplit("/", 1)[0])
    if match is None:
        return None
    return bounded_int(
        match.group(1),
        maximum=MAX_SESSION,
        what="the session folder's number",
        name=relpath,
        position="path",
    )


def _json_problem(item: Any) -> str | None:
    """What in an item JSON cannot hold faithfully: a key named twice in one object, or
    NaN/Infinity (also what a number too large for a float becomes); with its place."""
    stack: list[tuple[str, Any]] = [("", item)]
    while stack:
        where, node = stack.pop()
        prefix = f"{where}: " if where else ""
        if isinstance(node, DuplicateKeys):
            return (
                f"{prefix}names the key {node.duplicates[0]!r} twice (JSON would keep only"
                " the last value); name each key once"
            )
        if isinstance(node, float) and not math.isfinite(node):
            return (
                f"{prefix}holds {node!r} (NaN, Infinity or a number too large), which JSON"
                " does not allow; write a finite number or a string"
            )
        if isinstance(node, dict):
            children = [(f"{where}.{key}" if where else str(key), v) for key, v in node.items()]
            stack.extend(reversed(children))  # reversed: the first problem in the file wins
        elif isinstance(node, list):
            stack.extend(reversed([(f"{where}[{i}]", v) for i, v in enumerate(node)]))
    return None


#: Catalog lookup: a spelling -> (indicator id, its session), or None when unknown.
IndicatorResolver = Callable[[str], tuple[str, int | None] | None]

_NOT_UNICODE = "holds text that is not valid Unicode (an unpaired surrogate such as \\ud800)"


def _not_unicode(extra: dict[str, Any]) -> str | None:
    """The first unknown key whose name or value cannot be stored as UTF-8 text."""
    for key, value in extra.items():
        try:
            json.dumps({key: value}, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return key.encode("utf-8", "backslashreplace").decode("utf-8")
    return None


def _describe(exc: ValidationError) -> str:
    reasons = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "pair"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_too_short":
            message = "must not be empty"
        reasons.append(f"{field}: {message}")
    return "; ".join(reasons)


def validate_items(
    relpath: str,
    parsed: ParsedFile,
    *,
    max_question_chars: int,
    max_answer_chars: int,
    resolve_indicator: IndicatorResolver | None = None,
) -> tuple[list[PairRecord], list[PairError]]:
    """Validate every item of a parsed file; returns the valid pairs and the errors.

    A pair's indicator is the first of its own ``indicator``, the file's ``indicator``,
    the file's ``indicator_name`` and the file's path that ``resolve_indicator`` (the
    catalog) knows; when none is known, the first given is kept as written. Its session
    is its own, else the file's, else ``session_NN/``, else the catalog's.
    """
    errors = list(parsed.errors)
    try:
        file_fields = FileFields.model_validate(parsed.file_fields)
    except ValidationError as exc:
        errors.append(PairError("file fields", _describe(exc)))
        file_fields = FileFields()
    context = {"max_question_chars": max_question_chars, "max_answer_chars": max_answer_chars}
    try:
        path_session = session_from_path(relpath)
    except InputError as exc:
        errors.append(PairError("path", f"{exc.reason}; it is not used as the session"))
        path_session = None
    default_session = file_fields.session if file_fields.session is not None else path_session
    resolve = resolve_indicator or (lambda _text: None)
    file_candidates = (file_fields.indicator, file_fields.indicator_name, relpath)
    as_written = file_fields.indicator or indicator_from_path(relpath)
    file_resolved = next((hit for text in file_candidates if text and (hit := resolve(text))), None)
    pairs: list[PairRecord] = []
    seen: set[str] = set()
    for position, item in parsed.items:
        if not isinstance(item, dict):
            errors.append(PairError(position, f"expected an object, found {type(item).__name__}"))
            continue
        if parsed.suspect and (problem := _json_problem(item)):
            errors.append(PairError(position, problem))
            continue
        try:
            pair = QAPair.model_validate(item, context=context)
        except ValidationError as exc:
            errors.append(PairError(position, _describe(exc)))
            continue
        extra = {k: v for k, v in item.items() if k not in KNOWN_FIELDS}
        if bad := _not_unicode(extra):
            errors.append(PairError(position, f"{bad}: {_NOT_UNICODE}"))
            continue
        digest = pair_hash(pair.question, pair.answer)
        if digest in seen:
            errors.append(PairError(position, "repeats an earlier pair of this file"))
            continue
        seen.add(digest)
        resolved = (resolve(pair.indicator) if pair.indicator else None) or file_resolved
        indicator, catalog_session = resolved or (pair.indicator or as_written, None)
        session: int | None
        if pair.session is not None:
            session = pair.session
        else:
            session = default_session if default_session is not None else catalog_session
        pairs.append(
            PairRecord(
                hash=digest,
                question=pair.question,
                answer=pair.answer,
                position=position,
                item_id=None if pair.id is None else str(pair.id),
                indicator=indicator,
                session=session,
                category=pair.category or file_fields.category,
                difficulty=pair.difficulty,
                type=pair.type,
                tags=pair.tags,
                sources=pair.sources,
                extra=extra,
            )
        )
    return pairs, errors
