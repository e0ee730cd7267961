"""The indicator catalog: research sessions and their indicators, shipped as data.

The shipped catalog lives in ``daemon/data/catalog.toml`` (session 1 plus sessions 2-44,
227 indicators). A user may point inboxd at their own file with the same layout;
:func:`load_catalog` validates either and raises :class:`~daemon.core.errors.ConfigError`
with a message naming the file and the offending entry.

Names are matched with :func:`normalize_name`, so ``RSI_qa_pairs.json``,
``session_04/rsi.json``, ``Relative Strength Index`` and ``RSI (14)`` all resolve to the
same indicator (see :meth:`Catalog.resolve`).
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daemon.core.errors import ConfigError

__all__ = [
    "Catalog",
    "Indicator",
    "Session",
    "drop_qa_suffixes",
    "load_catalog",
    "normalize_name",
    "without_trailing_number",
]

_SLUG = r"^[a-z0-9]+(?:_[a-z0-9]+)*$"

_Slug = Annotated[str, Field(strict=True, pattern=_SLUG)]
_Text = Annotated[str, Field(strict=True, pattern=r"\S")]
_Number = Annotated[int, Field(strict=True, ge=1)]

_PATH_SEPARATORS = re.compile(r"[/\\]")
_EXTENSION = re.compile(r"\.jsonl?$")
_PARENTHESISED = re.compile(r"\([^()]*\)")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
#: Suffixes dropped from a key, longest first (so ``_qa_pairs`` wins over ``_pairs``).
_QA_SUFFIXES = ("_q_a_pairs", "_qa_pairs", "_pairs", "_q_a", "_qa")
_DIGITS = "0123456789"
#: Text longer than this is not a name: :meth:`Catalog.resolve` looks only at the
#: trailing path parts within it, so a pathological field costs the same as a short one.
MAX_NAME_CHARS = 256

_TOP_LEVEL_KEYS = ("sessions", "indicators")


class Session(BaseModel):
    """One research session: its number, theme and theme family."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: _Number
    theme: _Text
    category: _Slug
    delivered: Annotated[bool, Field(strict=True)] = False


class Indicator(BaseModel):
    """One indicator: a stable id, its display name, other spellings and its session."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: _Slug
    name: _Text
    aliases: tuple[_Text, ...] = ()
    session: _Number
    category: _Slug


def _key(text: str) -> str:
    """Normalise ``text`` as one name, treating ``/`` and ``\\`` as word separators."""
    key = text.casefold().strip()
    key = _EXTENSION.sub("", key)
    key = _PARENTHESISED.sub(" ", key)
    return drop_qa_suffixes(_NOT_ALNUM.sub("_", key).strip("_"))


def drop_qa_suffixes(key: str) -> str:
    """``rsi_qa_pairs``, ``rsi_q_a``, ``rsi_pairs_qa`` -> ``rsi`` (repeatedly)."""
    # Cut at an end index and slice once: ``x_qa_qa_qa...`` costs linear time.
    end = len(key)
    while cut := next((len(s) for s in _QA_SUFFIXES if key.endswith(s, 0, end)), 0):
        end -= cut
    return key[:end]


def without_trailing_number(key: str) -> str:
    """``rsi_14``, ``ema200``, ``a_1_2`` -> ``rsi``, ``ema``, ``a``: a key without its
    trailing period number (runs of digits, each after at most one ``_``), then without
    trailing ``_``. Written as a scan, not the regex ``(?:_?[0-9]+)+$``, whose nested
    quantifiers backtrack exponentially on ``rsi_111...1x``."""
    if not key.endswith(tuple(_DIGITS)):
        return key.rstrip("_")
    head = key.rstrip(_DIGITS + "_")
    tail = key[len(head) :]
    # A run of digits and "_" ending in a digit; the number starts after its last "__"
    # (an "_" must be followed by a digit to belong to it).
    double = tail.rfind("__")
    start = len(head) + (double + 1 if double >= 0 else 0)
    return key[:start].rstrip("_")


def normalize_name(text: str) -> str:
    """Return the matching key for a name, file name or relative path.

    Rules, in order: take the last path component (``/`` or ``\\``); case-fold; strip
    whitespace; drop a final ``.json``/``.jsonl``; drop parenthesised parameters
    (``RSI (14)`` -> ``rsi``); turn every run of other characters than ``a-z0-9``
    (spaces, ``-``, ``.``, ``%``, ``&`` ...) into one ``_`` and strip ``_`` from both
    ends; drop trailing ``_qa_pairs``, ``_q_a_pairs``, ``_qa`` and ``_pairs`` (repeatedly).
    Trailing period numbers are kept (``rsi14`` stays ``rsi14``, so ``total2`` and
    ``total3`` stay apart); :meth:`Catalog.resolve` retries without them only when the
    full key is unknown. The result is idempotent and, for ASCII text, case-insensitive.
    Catalog names containing ``/`` (``Long/Short Ratio``) are indexed as one name
    (``long_short_ratio``), not as a path.
    """
    return _key(_PATH_SEPARATORS.split(text)[-1])


class Catalog:
    """Sessions and indicators, with lookups by id, session and free-form name."""

    sessions: tuple[Session, ...]
    indicators: tuple[Indicator, ...]
    source: str

    def __init__(
        self,
        sessions: Iterable[Session],
        indicators: Iterable[Indicator],
        source: str = "catalog",
    ) -> None:
        """Check the entries against each other and build the indexes.

        Raises ConfigError (prefixed with ``source``) for duplicate session numbers or
        indicator ids, an indicator in an unknown session or with another category than
        its session, a session without indicators, and a name or alias that normalises
        to nothing or to a key another indicator already claims.
        """
        self.source = source
        session_list = list(sessions)
        indicator_list = list(indicators)
        self._sessions: dict[int, Session] = {}
        for session in session_list:
            if session.number in self._sessions:
                self._fail(f"session {session.number} is defined twice")
            self._sessions[session.number] = session
        self._by_id: dict[str, Indicator] = {}
        self._by_session: dict[int, list[Indicator]] = {n: [] for n in self._sessions}
        for indicator in indicator_list:
            self._add(indicator)
        for number, members in self._by_session.items():
            if not members:
                theme = self._sessions[number].theme
                self._fail(f"session {number} ({theme!r}) has no indicators")
        self._by_key: dict[str, tuple[Indicator, str]] = {}
        for indicator in indicator_list:
            self._index(indicator)
        self.sessions = tuple(sorted(session_list, key=lambda s: s.number))
        self.indicators = tuple(sorted(indicator_list, key=lambda i: i.session))

    def _fail(self, problem: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {problem}")

    def _add(self, indicator: Indicator) -> None:
        if indicator.id in self._by_id:
            self._fail(f"indicator id {indicator.id!r} is used twice")
        if normalize_name(indicator.id) != indicator.id:
            self._fail(
                f"indicator id {indicator.id!r} would be matched as "
                f"{normalize_name(indicator.id)!r}; drop the suffix"
            )
        session = self._sessions.get(indicator.session)
        if session is None:
            self._fail(
                f"indicator {indicator.id!r} is in session {indicator.session}, "
                "which no [[sessions]] entry defines"
            )
        if indicator.category != session.category:
            self._fail(
                f"indicator {indicator.id!r} has category {indicator.category!r} but its "
                f"session {session.number} has category {session.category!r}"
            )
        self._by_id[indicator.id] = indicator
        self._by_session[session.number].append(indicator)

    def _index(self, indicator: Indicator) -> None:
        spellings = [("id", indicator.id), ("name", indicator.name)]
        spellings += [("alias", alias) for alias in indicator.aliases]
        for kind, spelling in spellings:
            key = _key(spelling)
            if not key:
                self._fail(f"{kind} {spelling!r} of indicator {indicator.id!r} matches nothing")
            claimed = self._by_key.get(key)
            if claimed is None:
                self._by_key[key] = (indicator, f"{kind} {spelling!r}")
            elif claimed[0].id != indicator.id:
                self._fail(
                    f"{kind} {spelling!r} of indicator {indicator.id!r} and {claimed[1]} of "
                    f"indicator {claimed[0].id!r} both normalise to {key!r}"
                )

    def _lookup(self, key: str) -> Indicator | None:
        if not key:
            return None
        found = self._by_key.get(key)
        if found is not None:
            return found[0]
        trimmed = without_trailing_number(key)
        if trimmed and trimmed != key:
            found = self._by_key.get(trimmed)
            if found is not None:
                return found[0]
        return None

    def resolve(self, text: str | None) -> Indicator | None:
        """Return the indicator a pair field, file-level field, file name or path names.

        The text is matched by id, name and alias after :func:`normalize_name`. For a
        path, the longest trailing part that matches wins (``session_04/rsi.json`` tries
        ``session_04/rsi.json``, then ``rsi.json``), so names containing ``/`` such as
        ``Long/Short Ratio`` still match. If a key is unknown, it is retried once
        without a trailing period number (``rsi_14``, ``EMA200`` -> ``rsi``, ``ema``).
        Only the trailing parts within :data:`MAX_NAME_CHARS` are tried, so the cost is
        bounded whatever the text. None for None, empty or unknown text.
        """
        if text is None:
            return None
        parts = _PATH_SEPARATORS.split(text.strip())
        first, length = len(parts), -1
        while first > 0 and length + 1 + len(parts[first - 1]) <= MAX_NAME_CHARS:
            first -= 1
            length += 1 + len(parts[first])
        for start in range(first, len(parts)):
            found = self._lookup(_key("/".join(parts[start:])))
            if found is not None:
                return found
        return None

    def indicator(self, indicator_id: str) -> Indicator:
        """Return the indicator with this exact id; KeyError if there is none."""
        return self._by_id[indicator_id]

    def session(self, number: int) -> Session:
        """Return the session with this number; KeyError if there is none."""
        return self._sessions[number]

    def indicators_for_session(self, number: int) -> tuple[Indicator, ...]:
        """Return a session's indicators in catalog order; KeyError for an unknown session."""
        return tuple(self._by_session[number])

    def __repr__(self) -> str:
        return (
            f"Catalog({self.source!r}, {len(self.sessions)} sessions, "
            f"{len(self.indicators)} indicators)"
        )


def _describe_errors(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(entry)"
        if error["type"] == "missing":
            problems.append(f"missing key {key!r}")
        elif error["type"] == "extra_forbidden":
            problems.append(f"unknown key {key!r}")
        elif error["type"] in ("tuple_type", "list_type"):
            problems.append(f"key {key!r} must be a list of strings (got {error['input']!r})")
        elif (
            error["type"] == "string_pattern_mismatch"
            and error.get("ctx", {}).get("pattern") == _SLUG
        ):
            problems.append(
                f"key {key!r} must be a snake_case slug such as 'funding_rate' "
                f"(got {error['input']!r})"
            )
        elif error["type"] == "string_pattern_mismatch":
            problems.append(f"key {key!r} must not be blank")
        else:
            problems.append(f"key {key!r}: {error['msg']} (got {error['input']!r})")
    return "; ".join(problems)


_Entry = TypeVar("_Entry", Session, Indicator)


def _entries(data: Mapping[str, Any], table: str, source: str) -> list[Mapping[str, Any]]:
    raw = data.get(table)
    if raw is None:
        raise ConfigError(f"{source}: no [[{table}]] tables")
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise ConfigError(f"{source}: {table!r} must be an array of tables ([[{table}]])")
    return raw


def _label(table: str, position: int, entry: Mapping[str, Any]) -> str:
    field = "number" if table == "sessions" else "id"
    value = entry.get(field)
    named = f" ({field} {value!r})" if isinstance(value, str | int) else ""
    return f"[[{table}]] entry #{position}{named}"


def _validated(
    model: type[_Entry], data: Mapping[str, Any], table: str, source: str
) -> list[_Entry]:
    """Every entry of ``[[table]]`` as ``model``; the first invalid one names its place."""
    found: list[_Entry] = []
    for position, entry in enumerate(_entries(data, table, source), start=1):
        try:
            found.append(model.model_validate(entry))
        except ValidationError as exc:
            label = _label(table, position, entry)
            raise ConfigError(f"{source}: {label}: {_describe_errors(exc)}") from exc
    return found


def _parse(data: Mapping[str, Any], source: str) -> Catalog:
    unknown = sorted(set(data) - set(_TOP_LEVEL_KEYS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level key(s) {', '.join(map(repr, unknown))}; "
            "expected [[sessions]] and [[indicators]]"
        )
    sessions = _validated(Session, data, "sessions", source)
    indicators = _validated(Indicator, data, "indicators", source)
    return Catalog(sessions, indicators, source=source)


def _parse_text(text: str, source: str) -> Catalog:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    return _parse(data, source)


@functools.cache
def _shipped_catalog() -> Catalog:
    resource = resources.files("daemon") / "data" / "catalog.toml"
    return _parse_text(resource.read_text(encoding="utf-8"), str(resource))


def load_catalog(path: Path | None = None) -> Catalog:
    """Load and validate a catalog; None means the shipped one (read once, then cached).

    Raises ConfigError naming the file and the problem: unreadable file, TOML syntax
    error (with line and column), a missing, unknown or invalid key (with the entry),
    or any of the cross-checks in :class:`Catalog`.
    """
    if path is None:
        return _shipped_catalog()
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the catalog: {exc.strerror or exc}") from exc
    return _parse_text(text, source)
