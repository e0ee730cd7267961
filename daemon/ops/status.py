"""What ``inboxd status`` reports: gathered as plain data (for ``--json``), rendered with
rich for people. Reads the DB read-only, so it works while the daemon runs."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from daemon.core.config import Config
from daemon.states import BatchState
from daemon.store import Store
from daemon.store import intake as intake_db


def gather(config: Config) -> dict[str, Any]:
    """The headline numbers of a root as a JSON-able dict."""
    if not config.db_path.exists():
        return {"root": str(config.root), "initialised": False}
    store = Store(config.db_path, readonly=True)
    try:
        db = store.db
        by_state = {
            row["state"]: row["n"]
            for row in db.query("SELECT state, count(*) AS n FROM batches GROUP BY state")
        }
        rejected = [
            dict(row)
            for row in db.query(
                "SELECT id, path, reject_reason FROM batches WHERE state = ?"
                " ORDER BY id DESC LIMIT 20",
                [BatchState.REJECTED],
            )
        ]
        failed = [
            {**row, "parked": bool(row["parked"])}
            for row in db.query(
                "SELECT id, path, resume_state, attempts, last_error,"
                " next_attempt_at IS NULL AS parked FROM batches WHERE state = ? ORDER BY id",
                [BatchState.FAILED],
            )
        ]
        invalid = db.execute("SELECT count(*) FROM batch_errors").fetchone()[0]
        progress = [
            dict(row)
            for row in db.query(
                "SELECT agent, sessions_complete, sessions_total, current_session, last_updated,"
                " notes FROM progress ORDER BY agent"
            )
        ]
        signals = [
            dict(row)
            for row in db.query(
                "SELECT kind, agent, path, received_at, handled_at FROM signals ORDER BY id"
            )
        ]
        return {
            **_plan(config, store),
            "refinement": _refinement(config, store),
            "root": str(config.root),
            "initialised": True,
            "batches": {state.value: by_state.get(state.value, 0) for state in BatchState},
            "pairs": db.execute("SELECT count(*) FROM pairs").fetchone()[0],
            "invalid_items": invalid,
            "rejected": rejected,
            "refused": intake_db.refusals(db),
            "failed": failed,
            "progress": progress,
            "all_sessions_complete": [s for s in signals if s["kind"] == "all_sessions_complete"],
        }
    finally:
        store.close()


def _plan(config: Config, store: Store) -> dict[str, Any]:
    """The sessions table and headline numbers: what was asked against what arrived."""
    from daemon.plan import coverage, reports

    found = reports.gather(store, config)
    success = reports.success_report(store, config, found)
    plan = [s for s in found.sessions if s.kind == "plan"]
    return {
        "headline": {
            "sessions": {
                state: sum(1 for s in plan if s.status == state)
                for state in (coverage.DONE, coverage.PARTIAL, coverage.MISSING)
            },
            "indicators_covered": success["facts"]["indicators_covered"],
            "indicators_total": success["facts"]["indicators_total"],
            "pairs": success["facts"]["pairs"],
            "active_pairs": success["facts"]["active_pairs"],
            "average_quality": success["facts"]["average_quality"],
            "tier_reached": success["reached"],
        },
        "gemini": success.get("gemini_spend"),
        "sessions": [asdict(s) for s in found.sessions],
        "unresolved_indicators": found.unresolved,
        "warnings": found.warnings,
    }


def _refinement(config: Config, store: Store) -> dict[str, Any]:
    from daemon.providers.scorers import make_scorer
    from daemon.refine.index import META_FILE
    from daemon.store import corpus

    try:
        meta = json.loads((config.index_dir / META_FILE).read_text())
    except (OSError, ValueError):
        meta = {}
    return {
        "embeddings": corpus.embedding_count(store.db),
        "duplicates": corpus.duplicate_count(store.db),
        "active_pairs": len(corpus.active_pair_ids(store.db)),
        "quality": corpus.quality_summary(store.db, make_scorer(config).name),
        "index_size": meta.get("count"),
        "index_model": meta.get("model"),
    }


def render(report: dict[str, Any], console: Console) -> None:
    """Print the status report for a person."""
    if not report.get("initialised"):
        console.print(f"[yellow]{report['root']}: no database yet; run `inboxd run`.[/]")
        return
    _render_plan(report, console)
    console.print(
        f"[bold]inboxd[/] {report['root']}: [bold]{report['pairs']}[/] pairs imported, "
        f"{report['invalid_items']} invalid item(s) reported"
    )
    refined = report["refinement"]
    quality = refined["quality"]
    tiers = ", ".join(f"{t} {n}" for t, n in sorted(quality["tiers"].items()))
    console.print(
        f"Refinement: {refined['embeddings']} texts embedded, {refined['duplicates']}"
        f" duplicates, {refined['active_pairs']} active pairs, index "
        f"{refined['index_size']}; quality average {quality['average']} ({tiers})"
    )
    batches = Table(title="Batches by state")
    batches.add_column("state")
    batches.add_column("batches", justify="right")
    for state, count in report["batches"].items():
        if count:
            batches.add_row(state, str(count))
    console.print(batches)
    for row in report["progress"]:
        total = row["sessions_total"] or "?"
        console.print(
            f"Agent [bold]{row['agent']}[/]: sessions complete "
            f"{row['sessions_complete']}/{total}, current {row['current_session']}, "
            f"updated {row['last_updated']}" + (f" ({row['notes']})" if row["notes"] else "")
        )
    complete = report["all_sessions_complete"]
    console.print(
        "ALL_SESSIONS_COMPLETE.txt: "
        + (
            ", ".join(f"[green]received[/] from {s['agent']}" for s in complete)
            if complete
            else "not yet"
        )
    )
    if report["rejected"]:
        table = Table(title="Rejected files")
        for column in ("batch", "path", "reason"):
            table.add_column(column)
        for row in report["rejected"]:
            table.add_row(str(row["id"]), row["path"], row["reject_reason"] or "")
        console.print(table)
    if report["refused"]:
        table = Table(title="Refused files (not read; the agent's feedback folder says why)")
        for column in ("path", "reason"):
            table.add_column(column)
        for row in report["refused"]:
            where = f" (at {row['position']})" if row["position"] else ""
            table.add_row(row["path"], row["reason"] + where)
        console.print(table)
    if report["failed"]:
        table = Table(title="Failed batches (retried automatically; parked ones need `retry`)")
        for column in ("batch", "path", "at", "tries", "parked", "error"):
            table.add_column(column)
        for row in report["failed"]:
            table.add_row(
                str(row["id"]),
                row["path"],
                row["resume_state"] or "",
                str(row["attempts"]),
                "yes" if row["parked"] else "no",
                row["last_error"] or "",
            )
        console.print(table)


_STATUS_STYLE = {"done": "green", "partial": "yellow", "missing": "red"}


def _render_plan(report: dict[str, Any], console: Console) -> None:
    head = report["headline"]
    table = Table(title="Sessions")
    for column, justify in (
        ("session", "right"),
        ("theme", "left"),
        ("assigned", "left"),
        ("files", "right"),
        ("pairs", "right"),
        ("active", "right"),
        ("quality", "right"),
        ("status", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for s in report["sessions"]:
        style = _STATUS_STYLE[s["status"]]
        table.add_row(
            f"{s['number']:02d}",
            s["title"],
            s["assigned"] or "-",
            f"{s['files_delivered']}/{s['files_expected']}",
            str(s["pairs"]),
            str(s["active"]),
            "" if s["quality"] is None else f"{s['quality']:.0f}",
            f"[{style}]{s['status']}[/]",
        )
    console.print(table)
    counts = head["sessions"]
    quality = head["average_quality"]
    console.print(
        f"Sessions: [green]{counts['done']} done[/], [yellow]{counts['partial']} partial[/],"
        f" [red]{counts['missing']} missing[/]; indicators covered"
        f" {head['indicators_covered']}/{head['indicators_total']}; pairs {head['pairs']}"
        f" ({head['active_pairs']} active); average quality"
        f" {'-' if quality is None else quality}; success tier:"
        f" [bold]{head['tier_reached'] or 'none yet'}[/] (inboxd report)"
    )
    for warning in report["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}")
    if report.get("gemini"):
        from rich.markdown import Markdown

        from daemon.plan.reports import render_spend

        console.print(Markdown("\n".join(render_spend(report["gemini"]))))


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, default=str)
