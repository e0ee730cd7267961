"""Text identity: when two texts or two pairs count as the same, in one place.

- ``normalise``: NFC, whitespace collapsed, trimmed. Import keys and the embedding
  cache use it, so reformatting a file changes nothing.
- ``pair_hash``: a pair's content key (the same pair delivered twice is stored once).
- ``text_hash``: the embedding cache key of one text (nothing is embedded twice).
- ``norm_hash``: the exact-duplicate key (case, punctuation and whitespace ignored).
- ``is_decodable`` / ``printable``: whether a name from the file system is UTF-8, and
  how to show one that is not (its bytes escaped) in logs, the DB and feedback.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s]")
_SEPARATOR = "\x1f"  # never typed by an agent, so "a|b" + "c" differs from "a" + "b|c"


def normalise(text: str) -> str:
    """NFC, whitespace collapsed, trimmed: what counts as the same text."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pair_hash(question: str, answer: str) -> str:
    """The content key of a pair: the same pair anywhere gets the same hash."""
    return _sha256(normalise(question) + _SEPARATOR + normalise(answer))


def text_hash(text: str) -> str:
    """Cache key of a text: the same text is never embedded twice per model."""
    return _sha256(normalise(text))


def norm_hash(question: str, answer: str) -> str:
    """Key for exact duplicates: case, punctuation and whitespace ignored."""

    def fold(text: str) -> str:
        return " ".join(_PUNCTUATION.sub(" ", normalise(text).lower()).split())

    return text_hash(fold(question) + _SEPARATOR + fold(answer))


def is_decodable(text: str) -> bool:
    """Whether a name read from the file system is valid UTF-8 (Python keeps the bytes
    of one that is not as lone surrogates, which SQLite and JSON cannot store)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """``text`` with every byte that is not UTF-8 shown as ``\\xNN`` (and any other lone
    surrogate as ``\\udNNN``): safe to log, store and show."""
    if is_decodable(text):
        return text
    return "".join(
        f"\\x{ord(char) - 0xDC00:02x}"
        if "\udc80" <= char <= "\udcff"
        else (f"\\u{ord(char):04x}" if "\ud800" <= char <= "\udfff" else char)
        for char in text
    )
