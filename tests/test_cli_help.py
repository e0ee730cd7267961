"""The command line: every command explains itself with an example, ``init`` makes a root
the daemon accepts, ``status --json`` works on an empty root, bad config exits 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from daemon import __version__
from daemon.cli.app import COMMANDS, EXIT_CONFIG, cli
from daemon.core.config import CONFIG_FILE_NAME, load_config
from daemon.states import BatchState
from daemon.store import Store

pytestmark = pytest.mark.usefixtures("cli_isolated")


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def listed_commands() -> list[str]:
    """The commands ``inboxd --help`` lists."""
    result = invoke("--help")
    assert result.exit_code == 0
    section = result.output.split("Commands:", 1)[1]
    return re.findall(r"^  (\S+)", section, flags=re.MULTILINE)


def test_help_lists_every_command_and_an_example() -> None:
    """``inboxd --help`` names every registered command and shows an example."""
    assert sorted(listed_commands()) == sorted(COMMANDS)
    assert {"init", "run", "status", "retry"} <= set(listed_commands())
    assert "Example" in invoke("--help").output


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_help_has_an_example(command: str) -> None:
    """``inboxd <command> --help`` exits 0 and shows an ``Example`` with the command in it."""
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    example = result.output.split("Example", 1)[1]
    assert "inboxd" in example and command in example


def test_version_option() -> None:
    """``inboxd --version`` prints the package version."""
    assert __version__ in invoke("--version").output


def test_init_creates_the_layout_and_a_config_load_config_accepts(tmp_path: Path) -> None:
    """init makes inbox/, outbox/, state/, a migrated DB and a valid commented config."""
    root = tmp_path / "research"
    result = invoke("--root", str(root), "init")
    assert result.exit_code == 0, result.output
    for folder in ("inbox", "outbox", "state"):
        assert (root / folder).is_dir()
    config_file = root / CONFIG_FILE_NAME
    assert config_file.read_text().startswith("# inboxd configuration")
    config = load_config(root)
    assert config.root == root.resolve()
    store = Store(config.db_path, readonly=True)
    try:
        assert store.db["batches"].exists() and store.db["transitions"].exists()
    finally:
        store.close()


def test_init_twice_keeps_an_edited_config(tmp_path: Path) -> None:
    """Running init again is harmless: the operator's config file is not replaced."""
    assert invoke("--root", str(tmp_path), "init").exit_code == 0
    (tmp_path / CONFIG_FILE_NAME).write_text("[watch]\nsettle_seconds = 9\n")
    assert invoke("--root", str(tmp_path), "init").exit_code == 0
    assert load_config(tmp_path).watch.settle_seconds == 9.0


def test_status_json_on_an_empty_root(tmp_path: Path) -> None:
    """``status --json`` on a root with no database says so, as JSON, exit 0."""
    result = invoke("--root", str(tmp_path), "status", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"root": str(tmp_path.resolve()), "initialised": False}


def test_status_json_after_init_counts_nothing(tmp_path: Path) -> None:
    """After init, ``status --json`` reports every state with zero batches and no pairs."""
    invoke("--root", str(tmp_path), "init")
    result = invoke("--root", str(tmp_path), "status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["initialised"] is True
    assert report["pairs"] == 0
    assert report["batches"] == {state.value: 0 for state in BatchState}
    assert report["rejected"] == [] and report["failed"] == []


def test_status_for_people_on_an_empty_root(tmp_path: Path) -> None:
    """Plain ``status`` on a fresh root tells the operator what to do."""
    result = invoke("--root", str(tmp_path), "status")
    assert result.exit_code == 0
    assert "no database yet" in result.output


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    """A bad variable stops any command with exit code 2 and the key on stderr."""
    result = invoke("--root", str(tmp_path), "status", env={"INBOXD_RETRY__MAX_ATTEMPTS": "0"})
    assert result.exit_code == EXIT_CONFIG
    assert "retry.max_attempts" in result.stderr
    assert "INBOXD_RETRY__MAX_ATTEMPTS" in result.stderr


def test_retry_on_a_fresh_root_requeues_nothing(tmp_path: Path) -> None:
    """``retry`` after init reports zero re-queued batches."""
    invoke("--root", str(tmp_path), "init")
    result = invoke("--root", str(tmp_path), "retry")
    assert result.exit_code == 0
    assert "re-queued 0" in result.output
