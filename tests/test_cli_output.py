"""Commands as people type them and see them: the global options work before or after
the command's name; on a terminal a one-shot command prints its answer and nothing else
(logs in console form when asked for), off a terminal logs are JSON on stderr; ``run
--once`` on a terminal draws progress and ends with a summary; ``status`` leads with
the headline and folds the sessions."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import INBOXD, TIMEOUT, copy_tree, daemon_env, run_cli

from daemon.cli.app import COMMANDS, EXIT_CONFIG, cli
from daemon.cli.support import Options, log_settings

GLOBAL = {"root", "config", "log_format", "log_level"}
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\r")


pytestmark = pytest.mark.usefixtures("cli_isolated")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root after ``run --once`` on the design's examples plus one file that is not
    JSON (so something needs a person)."""
    from builders import example_tree

    root = tmp_path_factory.mktemp("demo") / "root"
    copy_tree(example_tree() / "outbox", root / "outbox")
    (root / "outbox" / "droid" / "broken_qa_pairs.json").write_text("{not json")
    once = run_cli(root, "run", "--once", timeout=TIMEOUT * 3)
    assert once.returncode == 0, once.stderr
    return root


def on_terminal(
    *args: str, stderr_too: bool = True, timeout: float = TIMEOUT * 3, stop_when: str = ""
) -> tuple[int, str, str]:
    """Run ``inboxd ARGS`` with stdout (and stderr, unless ``stderr_too`` is False) on a
    pseudo-terminal 120 columns wide; returns the exit code, what the terminal showed
    (escape sequences removed) and the piped stderr. ``stop_when``: SIGTERM the process
    once the terminal shows this text."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = daemon_env(TERM="xterm-256color", COLUMNS="120")
    proc = subprocess.Popen(
        [str(INBOXD), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave if stderr_too else subprocess.PIPE,
        env=env,
    )
    os.close(slave)
    seen = bytearray()
    deadline = time.monotonic() + timeout
    stopped = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the last holder of the terminal has gone
                    break
                if not chunk:
                    break
                seen += chunk
            if (
                stop_when
                and not stopped
                and stop_when in _ANSI.sub("", seen.decode(errors="replace"))
            ):
                proc.send_signal(signal.SIGTERM)
                stopped = True
        else:
            proc.kill()
            pytest.fail(f"inboxd {' '.join(args)} did not end within {timeout:.0f}s")
        code = proc.wait(timeout)
        err = proc.stderr.read().decode() if proc.stderr else ""
    finally:
        os.close(master)
        if proc.stderr:
            proc.stderr.close()
    return code, _ANSI.sub("", seen.decode(errors="replace")), err


def has_json_line(text: str) -> bool:
    return any(line.lstrip().startswith('{"') for line in text.splitlines())


# -- the global options ------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_takes_the_global_options_after_its_name(command: str) -> None:
    """Each command declares --root, --config, --log-format and --log-level itself."""
    names = {param.name for param in COMMANDS[command].load().params}
    assert names >= GLOBAL, f"{command} lacks {GLOBAL - names}"
    assert {param.name for param in cli.params} >= GLOBAL


def test_root_before_or_after_the_command_means_the_same(tmp_path: Path) -> None:
    """``--root R status`` and ``status --root R`` report the same root."""
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--root", str(tmp_path)]).exit_code == 0
    before = runner.invoke(cli, ["--root", str(tmp_path), "status", "--json"])
    after = runner.invoke(cli, ["status", "--json", "--root", str(tmp_path)])
    assert before.exit_code == after.exit_code == 0, after.output
    assert json.loads(before.stdout)["root"] == json.loads(after.stdout)["root"] == str(tmp_path)


def test_an_option_after_the_command_wins_over_one_before(tmp_path: Path) -> None:
    """Given twice, the value typed after the command's name is the one used."""
    (tmp_path / "a").mkdir()
    result = CliRunner().invoke(
        cli, ["--root", str(tmp_path / "a"), "status", "--json", "--root", str(tmp_path / "b")]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["root"] == str(tmp_path / "b")


def test_config_after_the_command_is_read(tmp_path: Path) -> None:
    """``status --config FILE`` reads FILE: a bad value in it stops the command (exit 2)."""
    bad = tmp_path / "mine.toml"
    bad.write_text("[retry]\nmax_attempts = 0\n")
    result = CliRunner().invoke(cli, ["status", "--root", str(tmp_path), "--config", str(bad)])
    assert result.exit_code == EXIT_CONFIG
    assert "retry.max_attempts" in result.stderr and str(bad) in result.stderr


@pytest.mark.parametrize(
    ("config", "given", "one_shot", "terminal", "expected"),
    [
        (("auto", "info"), None, True, True, ("console", "warning")),
        (("auto", "info"), "info", True, True, ("console", "info")),
        (("auto", "info"), None, True, False, ("json", "info")),
        (("auto", "info"), None, False, True, ("console", "info")),
        (("auto", "info"), None, False, False, ("json", "info")),
        (("json", "debug"), None, False, False, ("json", "debug")),
        (("json", "debug"), None, True, True, ("json", "warning")),
        (("console", "info"), None, True, False, ("console", "info")),
    ],
)
def test_log_settings_follow_the_terminal_unless_asked(
    config: tuple[str, str],
    given: str | None,
    one_shot: bool,
    terminal: bool,
    expected: tuple[str, str],
) -> None:
    """Format: as configured, else console on a terminal and JSON off it. Level: one-shot
    commands on a terminal show warnings unless --log-level asks; otherwise as configured."""
    options = Options(log_level=given)
    assert log_settings(*config, options, one_shot=one_shot, terminal=terminal) == expected


# -- output on a terminal, and off it ------------------------------------------------------


@pytest.mark.slow
def test_search_on_a_terminal_prints_the_answer_and_nothing_else(demo: Path) -> None:
    """On a terminal, ``search`` shows its results table and no log line at all."""
    code, shown, _ = on_terminal("search", "simple moving average", "--root", str(demo), "-k", "2")
    assert code == 0, shown
    assert "result(s) for 'simple moving average'" in shown
    assert "model.loaded" not in shown and "index.loaded" not in shown
    assert not has_json_line(shown)


@pytest.mark.slow
def test_log_level_on_a_terminal_shows_console_log_lines(demo: Path) -> None:
    """``--log-level info`` after the command brings the log back, for people, not JSON."""
    code, shown, _ = on_terminal(
        "search", "simple moving average", "--root", str(demo), "--log-level", "info"
    )
    assert code == 0, shown
    assert re.search(r"\[info\s*\]\s+index\.loaded", shown), shown
    assert not has_json_line(shown)


@pytest.mark.slow
def test_off_a_terminal_the_answer_is_on_stdout_and_json_logs_on_stderr(demo: Path) -> None:
    """Piped, ``search`` writes only its table to stdout and JSON log lines to stderr."""
    result = run_cli(demo, "search", "simple moving average", "-k", "2", timeout=TIMEOUT * 3)
    assert result.returncode == 0, result.stderr
    assert "result(s) for" in result.stdout and not has_json_line(result.stdout)
    events = [json.loads(line)["event"] for line in result.stderr.splitlines()]
    assert "index.loaded" in events


@pytest.mark.slow
def test_run_once_on_a_terminal_draws_progress_then_one_summary_line(tmp_path: Path) -> None:
    """``run --once`` on a terminal shows bars for files and pairs embedded while it
    works and ends with one summary line; no log line reaches the terminal."""
    from builders import example_tree

    root = tmp_path / "root"
    copy_tree(example_tree() / "outbox", root / "outbox")
    code, shown, _ = on_terminal("run", "--once", "--root", str(root))
    assert code == 0, shown
    assert "pairs embedded" in shown and "files" in shown  # the bars, drawn then cleared
    last = [line.strip() for line in shown.splitlines() if line.strip()][-1]
    assert last.startswith("3 file version(s) processed: 3 indexed; 5 pairs indexed"), shown
    assert "daemon.started" not in shown and not has_json_line(shown)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "bar", "answer"),
    [
        (("export",), "exporting", "exported 5 pairs to"),
        (("eval", "--limit", "20"), "eval: embedding queries", "reports: "),
    ],
)
def test_export_and_eval_on_a_terminal_draw_a_bar_then_print_the_answer(
    demo: Path, command: tuple[str, ...], bar: str, answer: str
) -> None:
    """``export`` and ``eval`` draw their progress while they work, then leave only
    their answer and no log line."""
    code, shown, _ = on_terminal(*command, "--root", str(demo))
    assert code == 0, shown
    assert bar in shown
    assert answer in shown
    assert "export.written" not in shown and "eval.completed" not in shown
    assert not has_json_line(shown)


@pytest.mark.slow
def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    """With stderr piped, ``run --once`` draws nothing there: no bar characters."""
    from builders import example_tree

    root = tmp_path / "root"
    copy_tree(example_tree() / "outbox", root / "outbox")
    code, shown, err = on_terminal("run", "--once", "--root", str(root), stderr_too=False)
    assert code == 0, shown + err
    assert "━" not in err and "pairs embedded" not in err and "pairs embedded" not in shown


@pytest.mark.slow
def test_the_daemon_on_a_terminal_logs_for_people_and_on_a_pipe_as_json(tmp_path: Path) -> None:
    """``inboxd run`` on a terminal logs console lines at info (no JSON); the same
    daemon under a pipe (journald) logs JSON on stdout (the other tests read it)."""
    (tmp_path / "root").mkdir()
    code, shown, _ = on_terminal(
        "run", "--root", str(tmp_path / "root"), stop_when="daemon.ready", timeout=TIMEOUT * 2
    )
    assert code == 0, shown
    assert re.search(r"\[info\s*\]\s+daemon\.ready", shown), shown
    assert not has_json_line(shown)


# -- status --------------------------------------------------------------------------------


#: A session row of the sessions table: its first cell, the session number.
SESSION_ROW = re.compile(r"^│\s+(\d\d) │", re.MULTILINE)


def _status(root: Path, *args: str) -> str:
    result = run_cli(root, "status", *args, timeout=TIMEOUT * 3, COLUMNS="120")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_status_leads_with_the_headline_then_folds_the_sessions(demo: Path) -> None:
    """The headline (pairs, active, coverage x/227, quality, tier, daemon, what needs a
    person) comes first; done and missing sessions are one line each; partial ones a row."""
    shown = _status(demo)
    lines = [line.rstrip() for line in shown.splitlines()]
    labels = [line.split()[0] for line in lines[1:9]]
    assert labels == [
        "pairs",
        "active",
        "coverage",
        "quality",
        "tier",
        "sessions",
        "daemon",
        "needs",
    ]
    assert "coverage   3/227 indicators" in shown
    assert "daemon     not running" in shown
    assert "1 file version(s) rejected" in shown  # the broken file, with where to look
    assert "missing: sessions 1, 3-44" in shown
    assert shown.index("needs you") < shown.index("missing: sessions") < shown.index("Batches:")
    assert SESSION_ROW.findall(shown) == ["02"]  # the one partial session


@pytest.mark.slow
def test_status_sessions_shows_a_row_for_every_session(demo: Path) -> None:
    """``status --sessions`` prints all 44 session rows."""
    rows = SESSION_ROW.findall(_status(demo, "--sessions"))
    assert rows == [f"{n:02d}" for n in range(1, 45)]


@pytest.mark.slow
def test_status_json_keeps_everything(demo: Path) -> None:
    """``status --json`` has every session, the headline, the daemon and the worker."""
    report = json.loads(_status(demo, "--json"))
    assert len(report["sessions"]) == 44
    assert report["headline"]["indicators_total"] == 227
    assert report["daemon"] == {"running": False, "pid": None}
    assert report["worker"] == []
