"""The plan commands: ``dispatch`` (assignments into the agent's inbox) and ``report``
(success criteria and gap analysis)."""

from __future__ import annotations

import json
import time
from typing import Any

import click
from rich.console import Console

from daemon.cli.support import global_options, load, with_errors
from daemon.core import ranges
from daemon.core.errors import InboxdError
from daemon.store import Store


@click.command()
@click.option("--agent", help="The agent whose inbox gets the files (default: [coverage] agent).")
@click.option(
    "--sessions",
    "session_spec",
    help="Sessions to assign, e.g. 2-44 or 2,5,9-12 (default: every session not delivered).",
)
@click.option("--gaps", is_flag=True, help="Write gap-fill assignments for what is missing.")
@click.option("--force", is_flag=True, help="Replace files a person edited.")
@global_options
@click.pass_context
def dispatch(
    ctx: click.Context, agent: str | None, session_spec: str | None, gaps: bool, force: bool
) -> None:
    """Write assignments into inbox/<agent>/ and register them as sessions.

    Writes session-NN-assignment.md for each session, MASTER_EXECUTION_PLAN.md and
    SESSION_INDEX.md; with --gaps, follow-up assignments for exactly what the gap
    analysis finds missing, numbered after the last session. A file a person wrote or
    edited is kept and listed (exit 0) while every other file is written; --force
    replaces it too.

    \b
    Example:
      inboxd dispatch --agent droid --sessions 2-44 --root ~/research
      inboxd dispatch --gaps --root ~/research
    """
    from daemon.core.catalog import load_catalog
    from daemon.plan import dispatch as work
    from daemon.plan import reports

    config = load(ctx)
    who = agent or config.coverage.agent

    def write() -> Any:
        catalog = load_catalog(config.catalog_path)
        store = Store(config.db_path)
        try:
            store.migrate()
            now = time.time()
            if gaps:
                found = reports.gather(store, config, catalog)
                return work.dispatch_gaps(store, config, catalog, who, found, force=force, now=now)
            chosen = work.parse_sessions(session_spec, catalog)
            return work.dispatch_plan(store, config, catalog, who, chosen, force=force, now=now)
        finally:
            store.close()

    result = with_errors(write)
    click.echo(
        f"{len(result.written)} file(s) written, {len(result.unchanged)} unchanged in"
        f" inbox/{who}/; sessions registered: "
        + (ranges.fold(result.sessions) or "none (nothing missing)")
    )
    if result.kept:
        click.echo(
            f"kept {len(result.kept)} file(s) a person wrote or edited (dispatch --force"
            " replaces them):\n" + "".join(f"  {path}\n" for path in result.kept),
            nl=False,
        )


@click.command()
@click.argument("which", type=click.Choice(["success", "gaps"]), default="success")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@global_options
@click.pass_context
def report(ctx: click.Context, which: str, as_json: bool) -> None:
    """Write and show the success criteria (default) or the gap analysis.

    Both land in state/reports/ as JSON and Markdown; the daemon writes them by itself
    after each corpus run (ALL_SESSIONS_COMPLETE.txt or inboxd refine).

    \b
    Example:
      inboxd report --root ~/research             # success.md: which tier is reached
      inboxd report gaps --json --root ~/research
    """
    from daemon.plan import reports

    config = load(ctx)

    def build() -> tuple[dict[str, Any], str]:
        if not config.db_path.exists():
            raise InboxdError(f"no database under {config.root}; run `inboxd run` first")
        store = Store(config.db_path, readonly=True)
        try:
            found = reports.gather(store, config)
            if which == "gaps":
                data, _ = reports.write_gaps(config, found)
                return data, (config.reports_dir / f"{reports.GAPS_FILE}.md").read_text()
            data = reports.success_report(store, config, found)
            reports.write_success(config, data)
            return data, reports.render_success(data)
        finally:
            store.close()

    data, markdown = with_errors(build)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        from rich.markdown import Markdown

        Console().print(Markdown(markdown))
