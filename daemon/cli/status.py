"""``inboxd status``: the headline, then the sessions; safe while the daemon runs."""

from __future__ import annotations

import click
from rich.console import Console

from daemon.cli.support import global_options, load, with_errors
from daemon.ops import status as status_report


@click.command()
@click.option("--sessions", "all_sessions", is_flag=True, help="A row for every session.")
@click.option("--json", "as_json", is_flag=True, help="Everything, machine-readable.")
@global_options
@click.pass_context
def status(ctx: click.Context, all_sessions: bool, as_json: bool) -> None:
    """Show the headline (pairs, coverage, quality, tier, what needs you), then sessions.

    Sessions are folded (done 1, 3-5; missing 2, 6-44) with a row for each partial
    one; --sessions shows a row for every session. Safe while the daemon runs: it
    also shows what the daemon is working on.

    \b
    Example:
      inboxd status --root ~/research
      inboxd status --root ~/research --sessions
      inboxd status --root ~/research --json | jq .headline
    """
    report = with_errors(lambda: status_report.gather(load(ctx)))
    if as_json:
        click.echo(status_report.to_json(report))
    else:
        status_report.render(report, Console(), all_sessions=all_sessions)
