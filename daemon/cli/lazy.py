"""A click group that imports a command's module only when that command runs.

Importing every command's modules cost a cold ``inboxd search`` about half a second
(the MCP SDK, the operator checks, the runtime, the RAG hand-off). Here each command is
a ``module:attribute`` string beside its one-line help, so ``inboxd --help`` lists every
command without importing any of them, and ``inboxd search`` imports only the search
command's module (click's documented "lazily loading subcommands" pattern).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives (``"package.module:attribute"``) and the first sentence of
    its help, which ``inboxd --help`` shows without importing the module."""

    target: str
    short_help: str

    def load(self) -> click.Command:
        """Import the module and return the command object."""
        module_name, attribute = self.target.split(":", 1)
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.target} is not a click command")
        return command


class LazyGroup(click.Group):
    """A group whose commands are ``lazy`` entries, imported on first use."""

    def __init__(self, *args: Any, lazy: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self.lazy.get(cmd_name)
        if entry is None:
            return super().get_command(ctx, cmd_name)
        return entry.load()

    def lazy_short_help(self, name: str, limit: int) -> str:
        """The help line ``inboxd --help`` shows for ``name``, from the table (nothing
        imported): a stand-in command holding the same first sentence, so that click
        shortens it exactly as it would the real command's help."""
        return click.Command(name, help=self.lazy[name].short_help).get_short_help_str(limit)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The "Commands:" section, in the layout of ``click.Group.format_commands``."""
        names = self.list_commands(ctx)
        if not names:
            return
        # Click's own width rule: what is left after the names and the spacing.
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.lazy:
                rows.append((name, self.lazy_short_help(name, limit)))
                continue
            command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
