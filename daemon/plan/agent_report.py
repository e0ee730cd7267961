"""What the agent learns about a delivered file once it is refined: which items added a
new pair and which repeated an earlier one (exact or near, of which pair and file, with
the similarity), which pairs scored poor and why (the scorer's sub-scores and red
flags), and how far each indicator the file touches is from its target.

The report joins the file version's feedback in ``inbox/<agent>/feedback/`` (the same
Markdown and JSON files the validation errors go to) and is rewritten idempotently:
the same DB state gives the same bytes, and a version has one pair of files however
often it is processed. ``inbox/<agent>/FEEDBACK_INDEX.md`` lists the latest version of
every file, worst first.

Written when a batch reaches ``indexed`` (its duplicates decided, its pairs scored and
the keepers of their clusters picked) and, for every current version, after each corpus
run, which re-decides duplicates and may bring the judge's scores.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from daemon.core.catalog import Catalog
from daemon.core.config import Config
from daemon.core.records import Batch
from daemon.plan.coverage import Coverage, IndicatorCoverage, analyse
from daemon.states import BatchState
from daemon.store import Store, outcomes
from daemon.store import sessions as plan_db

INDEX_FILE = "FEEDBACK_INDEX.md"
NEW, UNCHANGED, EXACT, NEAR = "new", "unchanged", "exact_duplicate", "near_duplicate"
TIERS = ("premium", "good", "fair", "poor")
_SHOWN = 200  # rows per Markdown table; the JSON has them all
_SNIPPET = 90  # characters of a question shown in a table


def coverage_now(
    store: Store,
    config: Config,
    catalog: Catalog,
    scorer: str,
    indicators: Collection[str] | None = None,
) -> Coverage:
    """The plan set against the corpus as it is now (the indicators' side of a report);
    with ``indicators``, right for those only (the others count as empty)."""
    return analyse(
        catalog,
        plan_db.indicator_facts(store.db, scorer, indicators),
        plan_db.assignments(store.db),
        config.coverage,
    )


# -- building a report ---------------------------------------------------------------------


def _where(delivery: dict[str, Any] | None, batch: Batch) -> dict[str, Any]:
    if delivery is None:
        return {"of_file": None, "of_position": None}
    same = delivery["path"] == batch.path and delivery["batch_id"] == batch.id
    return {
        "of_file": "this file" if same else delivery["path"],
        "of_position": delivery["position"],
    }


def _first_live(found: list[dict[str, Any]]) -> dict[str, Any] | None:
    live = [d for d in found if d["state"] != BatchState.SUPERSEDED]
    return next(iter(live or found), None)


def _earlier_member(
    members: list[dict[str, Any]], delivered: dict[int, list[dict[str, Any]]], batch: Batch
) -> dict[str, Any] | None:
    """A pair folded into one of this file's that another current file delivered first:
    this file's pair repeats it (and was kept for scoring higher)."""
    for member in members:
        earlier = [
            d
            for d in delivered.get(member["pair_id"], [])
            if d["batch_id"] < batch.id and d["state"] != BatchState.SUPERSEDED
        ]
        if earlier:
            return {**member, "delivery": earlier[0]}
    return None


def _outcome(
    item: dict[str, Any],
    batch: Batch,
    delivered: dict[int, list[dict[str, Any]]],
    folded: dict[int, list[dict[str, Any]]],
) -> dict[str, Any]:
    """What one item added: new, unchanged from the file's previous version, or a
    duplicate of an earlier pair (which, where, how similar)."""
    # Validation already refused a pair repeated within the file: each item here is
    # a distinct pair.
    pair_id = item["pair_id"]
    if item["duplicate_of"] is not None:
        kept = item["duplicate_of"]
        where = _first_live(delivered.get(kept, []))
        found = {
            "outcome": EXACT if item["method"] == "exact" else NEAR,
            "of": kept,
            **_where(where, batch),
            "similarity": round(float(item["similarity"]), 3),
        }
        if where is not None and where["batch_id"] > batch.id:
            # Delivered first, but a later pair saying the same scored higher and is kept.
            found["later_kept"] = True
        return found
    earlier = [d for d in delivered.get(pair_id, []) if d["batch_id"] < batch.id]
    elsewhere = [
        d for d in earlier if d["path"] != batch.path and d["state"] != BatchState.SUPERSEDED
    ]
    if elsewhere:  # the very same pair, already delivered by another current file
        return {"outcome": EXACT, "of": pair_id, **_where(elsewhere[0], batch), "similarity": 1.0}
    member = _earlier_member(folded.get(pair_id, []), delivered, batch)
    if member is not None:  # it repeats an earlier pair and, scoring higher, replaced it
        return {
            "outcome": EXACT if member["method"] == "exact" else NEAR,
            "of": member["pair_id"],
            **_where(member["delivery"], batch),
            "similarity": round(member["similarity"], 3),
            "kept_this_one": True,
        }
    if any(d["path"] == batch.path for d in earlier):
        return {"outcome": UNCHANGED}
    return {"outcome": NEW}


def _poor(item: dict[str, Any]) -> dict[str, Any]:
    subscores = dict(item["subscores"] or {})
    flags = subscores.pop("flags", [])
    return {
        "position": item["position"],
        "pair_id": item["pair_id"],
        "question": item["question"],
        "score": item["score"],
        "subscores": subscores,
        "red_flags": list(flags),
        "rationale": item["rationale"],
    }


def _coverage_rows(found: Coverage, indicators: Iterable[str | None]) -> list[dict[str, Any]]:
    by_id: dict[str, IndicatorCoverage] = {i.id: i for i in found.indicators}
    rows = []
    for name in sorted({str(i) for i in indicators if i}):
        known = by_id.get(name)
        if known is None:
            rows.append({"indicator": name, "known": False})
            continue
        rows.append(
            {
                "indicator": known.id,
                "known": True,
                "name": known.name,
                "active": known.active,
                "target": found.target_pairs,
                "need": known.need,
                "missing_types": known.missing_types,
                "missing_difficulties": known.missing_difficulties,
                "types_labelled": known.types_labelled,
                "difficulties_labelled": known.difficulties_labelled,
            }
        )
    return rows


def build_report(store: Store, batch: Batch, scorer: str, found: Coverage) -> dict[str, Any]:
    """The quality report of one refined file version, as JSON-able data."""
    items = outcomes.batch_items(store.db, batch.id, scorer)
    pair_ids = [i["pair_id"] for i in items]
    folded = outcomes.folded_members(store.db, pair_ids)
    related = pair_ids + [i["duplicate_of"] for i in items if i["duplicate_of"] is not None]
    related += [m["pair_id"] for members in folded.values() for m in members]
    delivered = outcomes.deliveries(store.db, related)
    duplicates: list[dict[str, Any]] = []
    counts = dict.fromkeys((NEW, UNCHANGED, EXACT, NEAR), 0)
    tiers = dict.fromkeys((*TIERS, "unscored"), 0)
    poor: list[dict[str, Any]] = []
    useful = 0
    for item in items:
        found_outcome = _outcome(item, batch, delivered, folded)
        counts[found_outcome["outcome"]] += 1
        if found_outcome["outcome"] in (EXACT, NEAR):
            duplicates.append(
                {
                    "position": item["position"],
                    "pair_id": item["pair_id"],
                    "question": item["question"],
                    **found_outcome,
                }
            )
        elif item["tier"] != "poor":
            useful += 1
        tiers[item["tier"] or "unscored"] += 1
        if item["tier"] == "poor":
            poor.append(_poor(item))
    of_questions = outcomes.questions(store.db, [d["of"] for d in duplicates])
    for duplicate in duplicates:
        duplicate["of_question"] = of_questions.get(duplicate["of"])
    _, invalid = outcomes.item_counts(store.db, batch.id)
    total = len(items) + invalid
    return {
        "scorer": scorer,
        "summary": {
            "items": total,
            "valid": len(items),
            "invalid": invalid,
            "new": counts[NEW],
            "unchanged": counts[UNCHANGED],
            "exact_duplicates": counts[EXACT],
            "near_duplicates": counts[NEAR],
            "tiers": tiers,
            "useful": useful,
            "useful_share": round(useful / total, 3) if total else 0.0,
        },
        "duplicates": duplicates,
        "poor": poor,
        "coverage": _coverage_rows(found, (i["indicator"] for i in items)),
    }


# -- rendering -----------------------------------------------------------------------------


def _snippet(text: str | None, limit: int = _SNIPPET) -> str:
    """Text that fits a Markdown table cell."""
    flat = " ".join(str(text or "").replace("|", "/").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _table(header: Sequence[str], rows: list[list[str]], align: str = "") -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align or "---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows[:_SHOWN]]
    if len(rows) > _SHOWN:
        lines.append(f"| ... {len(rows) - _SHOWN} more (all in the JSON file) |")
    return [*lines, ""]


def _advice(report: dict[str, Any]) -> list[str]:
    repeated = sum(1 for d in report["duplicates"] if not d.get("later_kept"))
    advice = []
    if repeated:
        advice.append(
            f"{repeated} item(s) repeat pairs already delivered (listed under Duplicates):"
            " a repeated pair adds nothing to the knowledge base; write new questions instead."
        )
    if report["poor"]:
        advice.append(
            f"{len(report['poor'])} pair(s) scored poor (listed under Poor pairs): fix what"
            " the red flags and low sub-scores name, then deliver the file again."
        )
    for row in report["coverage"]:
        if not row["known"]:
            advice.append(
                f"Indicator {row['indicator']!r} is not in the catalog: use its catalog id or name."
            )
            continue
        asks = [f"{row['need']} more pair(s)"] if row["need"] else []
        if row["missing_types"]:
            asks.append("question types " + ", ".join(row["missing_types"]))
        if row["missing_difficulties"]:
            asks.append("difficulties " + ", ".join(row["missing_difficulties"]))
        if asks:
            advice.append(f"{row['indicator']}: still needs " + "; ".join(asks) + ".")
    return [f"- {line}" for line in advice] or ["- Nothing to fix: every pair counted."]


def render_report(report: dict[str, Any]) -> list[str]:
    """The report as Markdown lines, appended to the file's feedback."""
    summary = report["summary"]
    tiers = summary["tiers"]
    lines = ["## What the pairs added", ""]
    lines += _table(
        ["outcome", "items"],
        [
            ["new", str(summary["new"])],
            ["unchanged from the previous version", str(summary["unchanged"])],
            ["exact duplicates", str(summary["exact_duplicates"])],
            ["near duplicates", str(summary["near_duplicates"])],
            ["invalid (not imported)", str(summary["invalid"])],
        ],
    )
    lines.append(
        f"Quality ({report['scorer']}): "
        + ", ".join(f"{tiers[t]} {t}" for t in (*TIERS, "unscored") if tiers[t])
        + f". {summary['useful']} of {summary['items']} item(s) added a pair above the poor"
        " tier."
    )
    lines += ["", "## What to do next", "", *_advice(report), ""]
    if report["duplicates"]:
        lines += ["## Duplicates", ""]
        lines += _table(
            ["position", "question", "duplicate of", "in", "similarity"],
            [
                [
                    f"`{d['position']}`",
                    _snippet(d["question"]),
                    f"pair {d['of']}: {_snippet(d['of_question'], 60)}",
                    _where_cell(d),
                    f"{d['similarity']:.3f}" + _kept_note(d),
                ]
                for d in report["duplicates"]
            ],
        )
    if report["poor"]:
        lines += ["## Poor pairs", ""]
        lines += _table(
            ["position", "question", "score", "sub-scores", "red flags"],
            [
                [
                    f"`{p['position']}`",
                    _snippet(p["question"]),
                    f"{p['score']:.0f}",
                    ", ".join(f"{k} {float(v):.0f}" for k, v in p["subscores"].items()),
                    ", ".join(p["red_flags"]) or "none: low sub-scores",
                ]
                for p in report["poor"]
            ],
        )
    if report["coverage"]:
        lines += ["## Coverage of the indicators in this file", ""]
        lines += _table(
            ["indicator", "active / target", "types missing", "difficulties missing"],
            [_coverage_cells(row) for row in report["coverage"]],
        )
    return lines


def _kept_note(duplicate: dict[str, Any]) -> str:
    if duplicate.get("kept_this_one"):
        return " (this one scored higher: kept)"
    if duplicate.get("later_kept"):
        return " (the later one scored higher: kept)"
    return ""


def _where_cell(duplicate: dict[str, Any]) -> str:
    if duplicate["of_file"] is None:
        return "-"
    return f"{duplicate['of_file']} `{duplicate['of_position']}`"


def _coverage_cells(row: dict[str, Any]) -> list[str]:
    if not row["known"]:
        return [row["indicator"], "not in the catalog", "-", "-"]
    types = ", ".join(row["missing_types"]) or ("none" if row["types_labelled"] else "unlabelled")
    levels = ", ".join(row["missing_difficulties"]) or (
        "none" if row["difficulties_labelled"] else "unlabelled"
    )
    return [row["indicator"], f"{row['active']} / {row['target']}", types, levels]
