"""Queries for search: the lexical side (FTS5 BM25 over questions and answers) and the
pairs of one catalog indicator. Functions take the sqlite-utils Database of a Store."""

from __future__ import annotations

from collections.abc import Sequence

from sqlite_utils import Database


def lexical_matches(db: Database, match: str, limit: int) -> list[int]:
    """Pair ids whose text matches the FTS5 expression ``match``, best BM25 first."""
    rows = db.execute(
        "SELECT rowid FROM pairs_fts WHERE pairs_fts MATCH ? ORDER BY bm25(pairs_fts) LIMIT ?",
        [match, limit],
    ).fetchall()
    return [int(r[0]) for r in rows]


def pairs_of_indicator(db: Database, indicator_id: str) -> set[int]:
    """Ids of the pairs filed under a catalog indicator."""
    rows = db.execute("SELECT id FROM pairs WHERE indicator = ?", [indicator_id]).fetchall()
    return {int(r[0]) for r in rows}


def known_words(db: Database, words: Sequence[str]) -> set[str]:
    """Which of ``words`` (letters only) some pair's text contains, as FTS5 matches them
    (porter stems: "averaging" is known when a pair says "average")."""
    return {
        word
        for word in words
        if db.execute(
            "SELECT 1 FROM pairs_fts WHERE pairs_fts MATCH ? LIMIT 1", [f'"{word}"']
        ).fetchone()
    }


def questions_by_id(db: Database, pair_ids: Sequence[int]) -> list[tuple[int, str]]:
    """(id, question) of these pairs, 500 ids a query."""
    found: list[tuple[int, str]] = []
    for start in range(0, len(pair_ids), 500):
        chunk = list(pair_ids[start : start + 500])
        marks = ", ".join("?" * len(chunk))
        found += db.execute(
            f"SELECT id, question FROM pairs WHERE id IN ({marks})", chunk
        ).fetchall()
    return found
