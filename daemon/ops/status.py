"""What ``inboxd status`` reports: gathered as plain data (for ``--json``), rendered with
rich for people. Reads the DB read-only, so it works while the daemon runs."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from daemon.core import ranges
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
            **_daemon(config, store),
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


def _daemon(config: Config, store: Store) -> dict[str, Any]:
    """Whether a daemon holds the root, and what its worker is doing (a task row left by
    a process that is gone is not shown)."""
    from daemon.ops.doctor.data import daemon_pid

    pid = daemon_pid(config.lock_path)
    tasks = [t for t in store.task_progress() if pid is not None and t["pid"] == pid]
    return {"daemon": {"running": pid is not None, "pid": pid}, "worker": tasks}


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


def render(report: dict[str, Any], console: Console, *, all_sessions: bool = False) -> None:
    """Print the status report for a person: the headline and what needs attention
    first, then the sessions (folded unless ``all_sessions``), then the details."""
    if not report.get("initialised"):
        console.print(f"[yellow]{report['root']}: no database yet; run `inboxd run`.[/]")
        return
    _render_headline(report, console)
    _render_sessions(report, console, all_sessions=all_sessions)
    _render_details(report, console)


_TIER_ORDER = ("premium", "good", "fair", "poor")


def problems(report: dict[str, Any]) -> list[str]:
    """What needs a person, each with what to do; empty when nothing does."""
    found = []
    rejected = report["batches"].get(BatchState.REJECTED.value, 0)
    if rejected:
        found.append(
            f"{rejected} file version(s) rejected: the agent's feedback is in"
            " inbox/<agent>/feedback/ (list below)"
        )
    if report["refused"]:
        found.append(
            f"{len(report['refused'])} file(s) refused (not read): the agent's feedback is in"
            " inbox/<agent>/feedback/ (list below)"
        )
    parked = [row for row in report["failed"] if row["parked"]]
    if parked:
        found.append(
            f"{len(parked)} batch(es) parked after repeated failures: fix the cause"
            " (error below), then `inboxd retry`"
        )
    if report["unresolved_indicators"]:
        found.append(
            f"{len(report['unresolved_indicators'])} indicator name(s) the catalog does not"
            " know: `inboxd report gaps`"
        )
    found += report["warnings"]
    return found


def _worker_line(report: dict[str, Any]) -> str:
    daemon = report["daemon"]
    if not daemon["running"]:
        return "not running (`inboxd run`)"
    line = f"running (pid {daemon['pid']})"
    if not report["worker"]:
        return line + ", idle"
    doing = []
    for task in report["worker"]:
        total = "?" if task["total"] is None else f"{task['total']:,}"
        text = f"{task['task']}: {task['done']:,}/{total} {task['unit']}".rstrip()
        if task["detail"]:
            text += f" ({task['detail']})"
        doing.append(text)
    return line + ", " + "; ".join(doing)


def _render_headline(report: dict[str, Any], console: Console) -> None:
    head, refined = report["headline"], report["refinement"]
    quality = refined["quality"]
    tiers = ", ".join(
        f"{tier} {quality['tiers'][tier]:,}" for tier in _TIER_ORDER if tier in quality["tiers"]
    )
    average = head["average_quality"]
    sessions = head["sessions"]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("pairs", f"{head['pairs']:,} ({refined['duplicates']:,} duplicates folded)")
    grid.add_row("active", f"{head['active_pairs']:,}")
    grid.add_row("coverage", f"{head['indicators_covered']}/{head['indicators_total']} indicators")
    grid.add_row(
        "quality",
        ("-" if average is None else f"average {average}") + (f" ({tiers})" if tiers else ""),
    )
    grid.add_row("tier", f"{head['tier_reached'] or 'none yet'} (`inboxd report` says why)")
    grid.add_row(
        "sessions",
        f"[green]{sessions['done']} done[/], [yellow]{sessions['partial']} partial[/],"
        f" [red]{sessions['missing']} missing[/]",
    )
    grid.add_row("daemon", _worker_line(report))
    found = problems(report)
    grid.add_row(
        "needs you",
        "\n".join(f"[yellow]{line}[/]" for line in found) if found else "[green]nothing[/]",
    )
    console.print(f"[bold]inboxd[/] {report['root']}")
    console.print(grid)


_STATUS_STYLE = {"done": "green", "partial": "yellow", "missing": "red"}


def _render_sessions(report: dict[str, Any], console: Console, *, all_sessions: bool) -> None:
    sessions = report["sessions"]
    shown = sessions if all_sessions else [s for s in sessions if s["status"] == "partial"]
    console.print()
    if not all_sessions:
        for state in ("done", "missing"):
            numbers = [s["number"] for s in sessions if s["status"] == state]
            if numbers:
                style = _STATUS_STYLE[state]
                console.print(f"[{style}]{state}:[/] sessions {ranges.fold(numbers)}")
    if shown:
        table = Table(title=None if all_sessions else "Partial sessions")
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
        for s in shown:
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
    if not all_sessions:
        console.print("[dim]a row for every session: inboxd status --sessions[/]")


def _render_details(report: dict[str, Any], console: Console) -> None:
    console.print()
    batches = ", ".join(f"{n} {state}" for state, n in report["batches"].items() if n)
    console.print(f"Batches: {batches or 'none yet'}")
    refined = report["refinement"]
    console.print(
        f"Refinement: {refined['embeddings']:,} texts embedded, index {refined['index_size']},"
        f" {report['invalid_items']} invalid item(s) reported"
    )
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
    if report.get("gemini"):
        from rich.markdown import Markdown

        from daemon.plan.reports import render_spend

        console.print(Markdown("\n".join(render_spend(report["gemini"]))))


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, default=str)
