"""The ``inboxd`` command line: the group, its global options, and where each command
lives. A command's module is imported only when that command runs (``daemon.cli.lazy``),
so a cold ``inboxd search`` does not pay for the MCP SDK, the runtime or the RAG
hand-off; each module is thin over plain functions."""

from __future__ import annotations

import click

from daemon import __version__
from daemon.cli.lazy import LazyCommand, LazyGroup
from daemon.cli.support import EXIT_CONFIG, EXIT_ERROR, EXIT_RUNNING, global_options

__all__ = ["COMMANDS", "EXIT_CONFIG", "EXIT_ERROR", "EXIT_RUNNING", "cli", "main"]

#: Every command: where it lives, and the first sentence of its help for ``inboxd
#: --help`` (tests/test_cli_help.py checks each against the command's own help).
COMMANDS = {
    "init": LazyCommand(
        "daemon.cli.setup:init",
        "Create inbox/, outbox/, state/, a commented config file, and the local model's"
        " ONNX export if no verified one is installed (a one-time step that needs torch).",
    ),
    "run": LazyCommand(
        "daemon.cli.run:run",
        "Watch inbox/ and outbox/ and process every file until SIGTERM or SIGINT.",
    ),
    "status": LazyCommand(
        "daemon.cli.status:status",
        "Show the headline (pairs, coverage, quality, tier, what needs you), then sessions.",
    ),
    "retry": LazyCommand(
        "daemon.cli.run:retry", "Re-queue failed batches now (all of them, or the ids given)."
    ),
    "search": LazyCommand(
        "daemon.cli.search:search",
        "Find the pairs that answer QUERY (works while the daemon runs).",
    ),
    "refine": LazyCommand(
        "daemon.cli.run:refine",
        "Re-run corpus-wide de-duplication from stored vectors and resync the index.",
    ),
    "dispatch": LazyCommand(
        "daemon.cli.plan:dispatch",
        "Write assignments into inbox/<agent>/ and register them as sessions.",
    ),
    "report": LazyCommand(
        "daemon.cli.plan:report",
        "Write and show the success criteria (default) or the gap analysis.",
    ),
    "doctor": LazyCommand(
        "daemon.cli.ops:doctor",
        "Check the root: folders, permissions, DB integrity, index, providers, model.",
    ),
    "backup": LazyCommand(
        "daemon.cli.ops:backup",
        "Copy the DB to DEST (a file, or a folder for a timestamped file) while it runs.",
    ),
    "export": LazyCommand(
        "daemon.cli.rag:export",
        "Export the refined knowledge base for a RAG system (works while the daemon runs).",
    ),
    "eval": LazyCommand(
        "daemon.cli.rag:evaluate",
        "Compare retrieval of the refined index with the unrefined baseline.",
    ),
    "ask": LazyCommand(
        "daemon.cli.ask:ask",
        "Answer QUESTION from the knowledge base, citing the pair ids it used.",
    ),
    "mcp": LazyCommand(
        "daemon.cli.mcp:mcp",
        "Serve the Model Context Protocol on stdin/stdout for an agent or MCP client.",
    ),
}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="inboxd")
@global_options
def cli() -> None:
    """inboxd: turn what research agents drop into folders into a refined Q&A base.

    The options below work before or after the command's name.

    \b
    Example:
      inboxd init --root ~/research
      inboxd run --root ~/research
      inboxd status --root ~/research
    """


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="inboxd")
