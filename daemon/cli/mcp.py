"""``inboxd mcp``: the tools an agent uses while it writes, over the Model Context
Protocol on stdio. The MCP SDK and its HTTP stack take about a second to import: the
``inboxd`` group imports this module only when ``mcp`` runs (``daemon.cli.lazy``)."""

from __future__ import annotations

import click

from daemon.agent.mcp_server import serve
from daemon.cli.support import global_options, load, with_errors


@click.command(name="mcp")
@global_options
@click.pass_context
def mcp(ctx: click.Context) -> None:
    """Serve the Model Context Protocol on stdin/stdout for an agent or MCP client.

    Tools: search (pairs with distances), coverage (an indicator or session against its
    target), gaps, status (headline numbers) and ask. Read-only; searches go through the
    running daemon when there is one. stdout carries only the protocol: logs go to
    stderr. An MCP client starts it; see the README for the client configuration.

    \b
    Example:
      inboxd mcp --root ~/research        # what an MCP client runs; in its config:
      {"mcpServers": {"inboxd": {"command": "inboxd",
                                 "args": ["mcp", "--root", "/home/me/research"]}}}
    """
    config = load(ctx)
    with_errors(lambda: serve(config))
