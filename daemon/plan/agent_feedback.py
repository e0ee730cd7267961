"""Writes the agent's quality feedback (``daemon.plan.agent_report``) into its inbox: the
report of a file version once it is indexed, every current version's again after a
corpus run, and ``inbox/<agent>/FEEDBACK_INDEX.md``, the latest version of each file,
worst first. Hooked into the pipeline by ``daemon.runtime.wiring``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from daemon.core import atomic
from daemon.core.config import Config
from daemon.core.logs import Event
from daemon.core.records import Batch
from daemon.ingest.feedback import feedback_paths, write_feedback
from daemon.plan.agent_report import INDEX_FILE, build_report, coverage_now, render_report
from daemon.plan.coverage import Coverage
from daemon.services import Services
from daemon.states import BatchState
from daemon.store import Store, outcomes


def write_report(
    config: Config, store: Store, batch: Batch, scorer: str, found: Coverage
) -> dict[str, Any]:
    """Rewrite the feedback of one indexed file version with its quality report (its
    validation errors stay first); returns the report."""
    report = build_report(store, batch, scorer, found)
    valid, _ = outcomes.item_counts(store.db, batch.id)
    write_feedback(
        config.inbox_dir,
        agent=batch.agent,
        relpath=batch.path,
        sha256=batch.sha256,
        imported=valid,
        errors=store.batch_errors(batch.id),
        extra_markdown=render_report(report),
        extra={"report": report},
    )
    return report


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _index_row(version: dict[str, Any], data: dict[str, Any], link: str) -> dict[str, Any]:
    if data.get("rejected"):
        errors = len(data.get("errors") or [])
        return {
            "path": version["path"],
            "rejected": str(data["rejected"]),
            "share": -1.0,  # rejected files come first
            "wasted": errors,
            "link": link,
        }
    summary = data["report"]["summary"]
    return {
        "path": version["path"],
        "rejected": None,
        "share": float(summary["useful_share"]),
        "wasted": int(summary["items"]) - int(summary["useful"]),
        "summary": summary,
        "link": link,
    }


def write_index(config: Config, store: Store, agent: str) -> Path:
    """``inbox/<agent>/FEEDBACK_INDEX.md``: each file's latest version, worst first."""
    rows, waiting = [], 0
    for version in outcomes.latest_versions(store.db, agent):
        md_path, json_path = feedback_paths(
            config.inbox_dir, agent, version["path"], version["sha256"]
        )
        data = _read_json(json_path)
        if data is None or not (data.get("rejected") or "report" in data):
            waiting += 1
            continue
        rows.append(_index_row(version, data, f"{md_path.parent.name}/{md_path.name}"))
    rows.sort(key=lambda r: (r["share"], -r["wasted"], r["path"]))
    lines = [
        f"# Feedback on {agent}'s deliveries",
        "",
        "The latest version of each delivered file, worst first: by the share of its items",
        "that added a new pair above the poor tier (rejected files first). Follow a file's",
        "link for what to fix: duplicates, poor pairs and the indicators' gaps.",
        "",
        "| file | useful | new | exact dup. | near dup. | poor | invalid | details |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        link = f"[feedback]({row['link']})"
        if row["rejected"]:
            reason = " ".join(row["rejected"].replace("|", "/").split())
            lines.append(f"| `{row['path']}` | rejected: {reason} | | | | | | {link} |")
            continue
        s = row["summary"]
        lines.append(
            f"| `{row['path']}` | {s['useful']} of {s['items']} ({s['useful_share']:.0%})"
            f" | {s['new']} | {s['exact_duplicates']} | {s['near_duplicates']}"
            f" | {s['tiers']['poor']} | {s['invalid']} | {link} |"
        )
    if not rows:
        lines.append("| (none yet) | | | | | | | |")
    if waiting:
        lines += ["", f"{waiting} file(s) still being refined; they are listed once scored."]
    path = config.inbox_dir / agent / INDEX_FILE
    atomic.write_text_if_changed(path, "\n".join(lines) + "\n")
    return path


# -- hooks -------------------------------------------------------------------------------


def after_batch_moved(ctx: Services, batch: Batch, now: float) -> None:
    """Pipeline hook: an indexed version gets its report; the index follows every
    version that comes to rest (indexed or rejected)."""
    if batch.state is BatchState.INDEXED:
        scorer = ctx.scorer.name
        indicators = outcomes.batch_indicators(ctx.store.db, batch.id)
        found = coverage_now(ctx.store, ctx.config, ctx.catalog, scorer, indicators)
        report = write_report(ctx.config, ctx.store, batch, scorer, found)
        summary = report["summary"]
        ctx.log.info(
            Event.FEEDBACK_WRITTEN,
            batch=batch.id,
            path=batch.path,
            agent=batch.agent,
            new=summary["new"],
            exact_duplicates=summary["exact_duplicates"],
            near_duplicates=summary["near_duplicates"],
            poor=summary["tiers"]["poor"],
        )
    elif batch.state is not BatchState.REJECTED:
        return
    write_index(ctx.config, ctx.store, batch.agent)


def after_corpus_run(ctx: Services, now: float) -> None:
    """Corpus hook: duplicates were re-decided (and scores may have landed), so every
    current indexed version's report is rewritten where it changed, then the indexes."""
    scorer = ctx.scorer.name
    found = coverage_now(ctx.store, ctx.config, ctx.catalog, scorer)
    agents: set[str] = set()
    reports = 0
    for version in outcomes.latest_versions(ctx.store.db):
        agents.add(version["agent"])
        if version["state"] == BatchState.INDEXED:
            write_report(ctx.config, ctx.store, Batch.from_row(version), scorer, found)
            reports += 1
    for agent in sorted(agents):
        write_index(ctx.config, ctx.store, agent)
    ctx.log.info(Event.FEEDBACK_WRITTEN, reports=reports, agents=sorted(agents))
