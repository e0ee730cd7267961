"""What an agent asks while it writes, as plain JSON-able data: search, the coverage of an
indicator or session, the gap list, the headline numbers, and ask.

The MCP server (``daemon.agent.mcp_server``) serves these. Each is read-only against the DB
and reuses what ``inboxd search``, ``status``, ``report gaps`` and ``ask`` compute:
nothing here derives a number of its own. Searches go through the running daemon when
there is one (``daemon.runtime.search_client``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from daemon.core.catalog import Catalog, load_catalog
from daemon.core.config import Config
from daemon.core.config_sections import CoverageConfig
from daemon.core.errors import InboxdError
from daemon.ops import status as status_report
from daemon.plan import coverage as plan
from daemon.plan import reports
from daemon.plan.coverage import Coverage, IndicatorCoverage
from daemon.providers.generators import Generator, make_generator
from daemon.rag.ask import ask_configured
from daemon.runtime.search_client import LiveSearcher
from daemon.search.searcher import Mode, default_max_distance
from daemon.store import Store


def _labels(wanted: tuple[str, ...], missing: list[str], labelled: bool) -> dict[str, Any]:
    # Unlabelled pairs cannot show a type or difficulty as covered or missing (see the
    # gap analysis), so both lists stay empty rather than claiming every word is missing.
    covered = [word for word in wanted if word not in missing] if labelled else []
    return {"covered": covered, "missing": missing, "labelled": labelled}


def indicator_coverage(item: IndicatorCoverage, settings: CoverageConfig) -> dict[str, Any]:
    """One indicator against the plan: pairs, active pairs, target, what is covered."""
    return {
        "indicator": item.id,
        "name": item.name,
        "known_to_catalog": True,
        "session": item.session,
        "category": item.category,
        "status": item.status,
        "pairs": item.pairs,
        "active": item.active,
        "target": settings.target_pairs,
        "need": item.need,
        "quality": item.quality,
        "premium": item.premium,
        "question_types": _labels(settings.question_types, item.missing_types, item.types_labelled),
        "difficulties": _labels(
            settings.difficulties, item.missing_difficulties, item.difficulties_labelled
        ),
        "files": item.files,
    }


class AgentTools:
    """The tools of one root; long-lived (the MCP server keeps one per process). One call
    at a time: the in-process model and searcher are not shared across threads."""

    def __init__(self, config: Config, log: Any) -> None:
        self.config = config
        self.log = log
        self.searcher = LiveSearcher(config, log)
        self._catalog: Catalog | None = None
        self._generator: Generator | None = None

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = load_catalog(self.config.catalog_path)
        return self._catalog

    def close(self) -> None:
        self.searcher.close()

    @contextmanager
    def _store(self) -> Iterator[Store]:
        if not self.config.db_path.exists():
            raise InboxdError(f"no database under {self.config.root}; run `inboxd run` first")
        store = Store(self.config.db_path, readonly=True)
        try:
            yield store
        finally:
            store.close()

    def _coverage(self) -> Coverage:
        with self._store() as store:
            return reports.gather(store, self.config, self.catalog)

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        indicator: str | None = None,
        min_quality: float | None = None,
        max_distance: float | None = None,
        mode: Mode = "hybrid",
    ) -> dict[str, Any]:
        """The pairs that answer ``query``, best first, with their cosine distance."""
        limit = (
            default_max_distance(mode, self.config.search.max_distance)
            if max_distance is None
            else max_distance
        )
        hits = self.searcher.search(
            query,
            k=k or self.config.search.default_k,
            max_distance=limit,
            indicator=indicator,
            min_quality=min_quality,
            mode=mode,
        )
        return {
            "query": query,
            "mode": mode,
            "max_distance": limit,
            "via": self.searcher.via,
            "hits": [hit.as_dict() for hit in hits],
        }

    def coverage(
        self, *, indicator: str | None = None, session: int | None = None
    ) -> dict[str, Any]:
        """An indicator's coverage against its target, or a session's with its indicators."""
        if (indicator is None) == (session is None):
            raise InboxdError("give either an indicator (id, name or alias) or a session number")
        found = self._coverage()
        by_id = {item.id: item for item in found.indicators}
        if indicator is not None:
            known = self.catalog.resolve(indicator)
            if known is not None:
                return indicator_coverage(by_id[known.id], self.config.coverage)
            for row in found.unresolved:  # pairs filed under a name the catalog lacks
                if row["indicator"] == indicator:
                    return {"indicator": indicator, "known_to_catalog": False, **row}
            raise InboxdError(f"the catalog has no indicator {indicator!r} and no pair names it")
        progress = next((s for s in found.sessions if s.number == session), None)
        if progress is None:
            numbers = [s.number for s in found.sessions]
            raise InboxdError(
                f"no session {session} in the plan (sessions {min(numbers)}-"
                f"{max(numbers)}, gap-fill sessions included)"
            )
        return {
            **asdict(progress),
            "target_per_indicator": self.config.coverage.target_pairs,
            "indicators": [
                indicator_coverage(by_id[i], self.config.coverage) for i in progress.indicators
            ],
        }

    def gaps(self) -> dict[str, Any]:
        """The current gap analysis (what ``inboxd report gaps`` writes), without writing."""
        return plan.gaps(self._coverage())

    def status(self) -> dict[str, Any]:
        """The headline numbers of ``inboxd status``, without the per-session table."""
        report = status_report.gather(self.config)
        if not report["initialised"]:
            raise InboxdError(f"no database under {self.config.root}; run `inboxd run` first")
        return {
            "root": report["root"],
            "headline": report["headline"],
            "batches": report["batches"],
            "pairs": report["pairs"],
            "invalid_items": report["invalid_items"],
            "refinement": report["refinement"],
            "progress": report["progress"],
            "all_sessions_complete": bool(report["all_sessions_complete"]),
            "warnings": report["warnings"],
        }

    def ask(self, question: str, *, k: int | None = None) -> dict[str, Any]:
        """``inboxd ask --json``: the retrieved pairs as sources, and the configured
        generator's answer (with generator ``none``, the numbered context)."""
        if self._generator is None:  # kept: a local model loads once per process
            self._generator = make_generator(self.config)
        answer = ask_configured(
            self.config, question, self.searcher, self._generator, k=k, log=self.log
        )
        return {**answer.as_dict(), "via": self.searcher.via}
