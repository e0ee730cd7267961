"""The reports under ``state/reports/``: gap analysis (``gaps.json``/``gaps.md``) and the
seed's success criteria (``success.json``/``success.md``), computed from the live DB."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.core import atomic
from daemon.core.catalog import Catalog, load_catalog
from daemon.core.config import Config
from daemon.plan import coverage
from daemon.plan.coverage import Coverage
from daemon.store import Store
from daemon.store import sessions as plan_db

GAPS_FILE, SUCCESS_FILE, EVAL_FILE = "gaps", "success", "eval"

# The seed's three tiers (its "~17,000+", "~20,000+", "~22,000+" pairs, "80%+ average
# quality", "90%+ premium tier").
MINIMUM_PAIRS, TARGET_PAIRS, OUTSTANDING_PAIRS = 17_000, 20_000, 22_000
TARGET_QUALITY, OUTSTANDING_PREMIUM_SHARE = 80.0, 0.90


def scorer_name(config: Config) -> str:
    """The configured scorer's name: the quality the reports show is its."""
    from daemon.providers.scorers import make_scorer

    return make_scorer(config).name


def gather(store: Store, config: Config, catalog: Catalog | None = None) -> Coverage:
    """Progress and gaps of a root, from its DB."""
    catalog = catalog or load_catalog(config.catalog_path)
    progress = [dict(row) for row in store.db.query("SELECT * FROM progress ORDER BY agent")]
    return coverage.analyse(
        catalog,
        plan_db.indicator_facts(store.db, scorer_name(config)),
        plan_db.assignments(store.db),
        config.coverage,
        progress,
    )


def _write(config: Config, stem: str, data: dict[str, Any], markdown: str) -> list[Path]:
    folder = config.reports_dir
    paths = [folder / f"{stem}.json", folder / f"{stem}.md"]
    atomic.write_text(paths[0], json.dumps(data, indent=2, default=str) + "\n")
    atomic.write_text(paths[1], markdown)
    return paths


def write_gaps(config: Config, found: Coverage) -> tuple[dict[str, Any], list[Path]]:
    """Write ``gaps.json`` and ``gaps.md``; returns the data and the paths."""
    data = {"at": _now_iso(), **coverage.gaps(found)}
    return data, _write(config, GAPS_FILE, data, coverage.render_gaps(data))


# -- success criteria ----------------------------------------------------------------


@dataclass(frozen=True)
class SuccessFacts:
    """The measured values the success criteria are judged on."""

    indicators_total: int
    indicators_covered: int
    pairs: int  # distinct pairs of live files (duplicates included: "generated")
    active_pairs: int  # after de-duplication
    average_quality: float | None
    premium_share: float | None  # of scored active pairs
    rejected_files: int
    invalid_items: int
    failed_batches: int
    unfinished_batches: int
    retrieval_improved: bool | None = None  # None: no evaluation has run
    retrieval_significantly_improved: bool | None = None
    retrieval_summary: str | None = None


def facts_of(
    found: Coverage, health: dict[str, int], evaluation: dict[str, Any] | None
) -> SuccessFacts:
    """SuccessFacts from a coverage analysis, batch health and the latest evaluation."""
    active = [i for i in found.indicators if i.active]
    scored = [(i.quality, i.active, i.premium) for i in active if i.quality is not None]
    weight = sum(n for _, n, _ in scored)
    unresolved_pairs = sum(row["pairs"] for row in found.unresolved)
    return SuccessFacts(
        indicators_total=len(found.indicators),
        indicators_covered=len(active),
        pairs=sum(i.pairs for i in found.indicators) + unresolved_pairs,
        active_pairs=sum(i.active for i in found.indicators),
        average_quality=round(sum(q * n for q, n, _ in scored) / weight, 1) if weight else None,
        premium_share=round(sum(p for *_, p in scored) / weight, 4) if weight else None,
        rejected_files=health["rejected"],
        invalid_items=health["invalid_items"],
        failed_batches=health["failed"],
        unfinished_batches=health["unfinished"],
        retrieval_improved=None if evaluation is None else bool(evaluation.get("improved")),
        retrieval_significantly_improved=None
        if evaluation is None
        else bool(evaluation.get("significantly_improved")),
        retrieval_summary=None if evaluation is None else evaluation.get("summary"),
    )


def _criterion(name: str, measured: str, met: bool | None) -> dict[str, Any]:
    return {"criterion": name, "measured": measured, "met": met}


def evaluate(facts: SuccessFacts) -> dict[str, Any]:
    """Judge the seed's Minimum, Target and Outstanding tiers; ``reached`` is the highest
    tier met together with every tier below it. A retrieval criterion counts only once
    an evaluation has run (``met`` is None until then)."""
    covered = _criterion(
        f"all {facts.indicators_total} indicators covered",
        f"{facts.indicators_covered}/{facts.indicators_total}",
        facts.indicators_covered == facts.indicators_total,
    )

    def pairs(floor: int) -> dict[str, Any]:
        return _criterion(f">= {floor:,} pairs", f"{facts.pairs:,}", facts.pairs >= floor)

    def at_least(name: str, value: float | None, floor: float, shown: str) -> dict[str, Any]:
        measured = "not scored" if value is None else format(value, shown)
        return _criterion(name, measured, value is not None and value >= floor)

    def retrieval(name: str, met: bool | None) -> dict[str, Any]:
        return _criterion(name, facts.retrieval_summary or "no evaluation yet (inboxd eval)", met)

    tiers = {
        "minimum": [
            covered,
            pairs(MINIMUM_PAIRS),
            _criterion(
                "valid JSON throughout",
                f"{facts.rejected_files} file(s) rejected, {facts.invalid_items} invalid"
                " item(s) in current files",
                facts.rejected_files == 0 and facts.invalid_items == 0,
            ),
            _criterion(
                "import successful",
                f"{facts.failed_batches} failed, {facts.unfinished_batches} not yet imported",
                facts.failed_batches == 0 and facts.unfinished_batches == 0 and facts.pairs > 0,
            ),
        ],
        "target": [
            covered,
            pairs(TARGET_PAIRS),
            at_least(
                f"average quality >= {TARGET_QUALITY:.0f}",
                facts.average_quality,
                TARGET_QUALITY,
                ".1f",
            ),
            retrieval("RAG retrieval improved", facts.retrieval_improved),
        ],
        "outstanding": [
            covered,
            pairs(OUTSTANDING_PAIRS),
            at_least(
                f">= {OUTSTANDING_PREMIUM_SHARE:.0%} premium tier after refinement",
                facts.premium_share,
                OUTSTANDING_PREMIUM_SHARE,
                ".1%",
            ),
            retrieval(
                "RAG retrieval significantly improved", facts.retrieval_significantly_improved
            ),
        ],
    }
    met = {name: all(c["met"] is not False for c in rows) for name, rows in tiers.items()}
    reached = None
    for name in ("minimum", "target", "outstanding"):
        if not met[name]:
            break
        reached = name
    return {
        "reached": reached,
        "tiers": {name: {"met": met[name], "criteria": rows} for name, rows in tiers.items()},
        "facts": asdict(facts),
    }


def render_success(report: dict[str, Any]) -> str:
    """``success.md``."""
    reached = report["reached"]
    lines = [
        "# Success criteria",
        "",
        f"Tier reached: **{reached.capitalize() if reached else 'none yet'}**",
        "",
    ]
    for name, tier in report["tiers"].items():
        lines += [f"## {name.capitalize()}: {'met' if tier['met'] else 'not met'}", ""]
        lines += ["| criterion | measured | met |", "|---|---|---|"]
        for c in tier["criteria"]:
            mark = {True: "yes", False: "no", None: "not evaluated"}[c["met"]]
            lines.append(f"| {c['criterion']} | {c['measured']} | {mark} |")
        lines.append("")
    if report.get("gemini_spend"):
        lines += render_spend(report["gemini_spend"])
    return "\n".join(lines)


def gemini_spend(store: Store, config: Config) -> dict[str, Any] | None:
    """Gemini spend, budget and judge progress; None when no Gemini provider is set."""
    if "gemini" not in (config.embeddings.provider, config.scoring.provider):
        return None
    from daemon.gemini.backlog import judge_progress
    from daemon.gemini.costs import spend_summary

    found = spend_summary(store.db, config)
    if config.scoring.provider == "gemini":
        found["judge"] = judge_progress(store, config)
    return found


def render_spend(spend: dict[str, Any]) -> list[str]:
    """Markdown lines for the Gemini spend (shared by success.md and status)."""
    lines = [
        "## Gemini spend",
        "",
        f"Spent ${spend['spent_usd']:.4f} of a ${spend['budget_usd']:.2f} budget"
        f" (${spend['reserved_usd']:.4f} reserved by open jobs, ${spend['remaining_usd']:.4f}"
        " left).",
        "",
    ]
    if spend["budget_stopped"]:
        stop = spend["last_budget_stop"]
        lines += [
            f"**Budget reached**: the {stop['stage']} stage stopped (it needed"
            f" ${stop['needed_usd']:.4f}); raise `gemini.budget_usd` to go on.",
            "",
        ]
    if spend["by_stage"]:
        lines += ["| stage | model | mode | calls | tokens in | tokens out | cost |"]
        lines += ["|---|---|---|---:|---:|---:|---:|"]
        lines += [
            f"| {r['stage']} | {r['model']} | {r['mode']} | {r['calls']} |"
            f" {r['input_tokens']:,} | {r['output_tokens']:,} | ${r['cost_usd']:.4f} |"
            for r in spend["by_stage"]
        ]
        lines.append("")
    if judge := spend.get("judge"):
        lines += [
            f"Judge {judge['scorer']} ({judge['mode']}): {judge['scored']} scored,"
            f" {judge['in_jobs']} in open jobs, {judge['pending']} pending,"
            f" {judge['marked']} given up on.",
            "",
        ]
    return lines


def latest_evaluation(config: Config) -> dict[str, Any] | None:
    """The last ``inboxd eval`` result, if one has run."""
    try:
        data = json.loads((config.reports_dir / f"{EVAL_FILE}.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def success_report(store: Store, config: Config, found: Coverage | None = None) -> dict[str, Any]:
    """The success criteria on the live data."""
    found = found or gather(store, config)
    facts = facts_of(found, plan_db.import_health(store.db), latest_evaluation(config))
    report = {"at": _now_iso(), **evaluate(facts)}
    if (spend := gemini_spend(store, config)) is not None:
        report["gemini_spend"] = spend
    return report


def write_success(config: Config, report: dict[str, Any]) -> list[Path]:
    return _write(config, SUCCESS_FILE, report, render_success(report))


def _now_iso() -> str:
    return datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="seconds")
