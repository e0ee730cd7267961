"""The command line loads only what the command being run needs: ``inboxd --help`` lists
every command from a table without importing any command's module, and a cold ``inboxd
search`` imports none of the heavy optional libraries (torch, the MCP SDK, Chroma,
llama.cpp, the Gemini SDK) nor the other commands' modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from builders import example_tree
from click.testing import CliRunner
from conftest import TIMEOUT, copy_tree, daemon_env, run_cli

from daemon.cli.app import COMMANDS, cli
from daemon.cli.lazy import LazyGroup

#: What a search must never import: the heavy optional libraries, each behind the one
#: command or provider that needs it.
HEAVY = ("torch", "sentence_transformers", "transformers", "mcp", "chromadb", "llama_cpp")
SDK = "google.genai"

pytestmark = pytest.mark.usefixtures("cli_isolated")


# Runs the console script's entry point and, at exit, writes every imported module's
# name to the file given first. (``-X importtime`` would not do: it does not report a
# module imported through ``importlib.import_module``, as the lazy group imports them.)
_HARNESS = """
import atexit, json, sys
from pathlib import Path
out = Path(sys.argv.pop(1))
atexit.register(lambda: out.write_text(json.dumps(sorted(sys.modules))))
from daemon.cli.app import main
sys.argv[0] = "inboxd"
main()
"""


def imported_modules(
    tmp_path: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``inboxd ARGS`` as a new process; what it did and every module it imported."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _HARNESS, str(out), *args],
        capture_output=True,
        text=True,
        env=daemon_env(),
        timeout=TIMEOUT * 2,
        check=False,
    )
    return done, set(json.loads(out.read_text()))


def command_modules() -> set[str]:
    """The module of every command in the table."""
    return {entry.target.split(":")[0] for entry in COMMANDS.values()}


def test_the_table_matches_each_commands_own_name_and_help() -> None:
    """Each table entry names a command of that name whose help starts with the sentence
    the table shows, so ``inboxd --help`` cannot drift from the commands."""
    for name, entry in COMMANDS.items():
        command = entry.load()
        assert command.name == name
        for limit in (45, 74, 1000):
            assert cli.lazy_short_help(name, limit) == command.get_short_help_str(limit), name


def test_help_from_the_table_equals_help_from_the_loaded_commands() -> None:
    """``inboxd --help`` reads the same as the help of an ordinary click group holding
    every command loaded: same commands, same order, same short help."""
    eager = click.Group(
        name=cli.name,
        help=cli.help,
        params=cli.params,
        context_settings=cli.context_settings,
        commands={name: entry.load() for name, entry in COMMANDS.items()},
    )
    for width in (80, 120):
        lazy_help = CliRunner().invoke(cli, ["--help"], terminal_width=width)
        eager_help = CliRunner().invoke(eager, ["--help"], terminal_width=width)
        assert lazy_help.exit_code == eager_help.exit_code == 0
        assert lazy_help.output.replace("cli ", "inboxd ") == eager_help.output.replace(
            "cli ", "inboxd "
        )
        for name in COMMANDS:
            assert f"\n  {name} " in lazy_help.output


def test_an_unknown_command_is_refused_as_before() -> None:
    """A mistyped command exits 2 with click's usual message."""
    result = CliRunner().invoke(cli, ["serch", "x"])
    assert result.exit_code == 2
    assert "No such command 'serch'" in result.output


def test_the_group_is_lazy() -> None:
    """The ``inboxd`` group is the lazy group, with no command registered eagerly."""
    assert isinstance(cli, LazyGroup)
    assert cli.commands == {}
    assert cli.list_commands(click.Context(cli)) == sorted(COMMANDS)


def test_help_imports_no_command_module(tmp_path: Path) -> None:
    """``inboxd --help`` in a new process lists every command and imports none of their
    modules."""
    done, modules = imported_modules(tmp_path, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    for name in COMMANDS:
        assert f"\n  {name} " in done.stdout
    assert modules & command_modules() == set()


@pytest.mark.slow
def test_a_cold_search_imports_only_what_searching_needs(tmp_path: Path) -> None:
    """A cold ``inboxd search`` (no daemon) answers from the root without importing
    torch, sentence-transformers, the MCP SDK, chromadb, llama.cpp or the Gemini SDK,
    and without any other command's module."""
    root = tmp_path / "root"
    copy_tree(example_tree(), root)
    assert run_cli(root, "run", "--once", timeout=TIMEOUT * 3).returncode == 0
    done, modules = imported_modules(
        tmp_path, "--root", str(root), "search", "moving average", "--json"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Moving Average" in done.stdout
    heavy = {m for m in modules if m.split(".")[0] in HEAVY or m.startswith(SDK)}
    assert heavy == set()
    assert modules & command_modules() == {"daemon.cli.search"}
    # The daemon's own parts a reader has no use for.
    assert not {m for m in modules if m.startswith(("daemon.agent", "daemon.gemini"))}
    assert "daemon.runtime.service" not in modules
