"""The README's commands work as typed, so the README cannot drift from the code.

Every ``inboxd ...`` (also ``.venv/bin/inboxd``, ``/opt/inboxd/venv/bin/inboxd``,
``sudo -u inboxd ...``) and ``scripts/dev ...`` line in the shell code blocks of
README.md and systemd/README.md, and the unit's ``ExecStart=``, runs in order and must
exit 0. So do the ``cp`` lines that feed them. The paths the documents use are mapped
onto temp folders (``/tmp/demo``, ``/var/lib/inboxd``, ``/var/backups/inboxd``); a
daemon (``run`` without ``--once``, ``scripts/dev run``) is stopped with SIGTERM once
ready and must exit 0; ``scripts/dev test`` runs ruff, mypy, lint-imports and a narrow selection of
tests (the whole suite is the run this test is part of). The only lines skipped are
those marked at their end ``# needs: systemd`` or ``# needs: network``.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import INBOXD, REPO, TIMEOUT, poll_until

DOCUMENTS = (REPO / "README.md", REPO / "systemd" / "README.md")
UNIT = REPO / "systemd" / "inboxd.service"
#: The marker for a line the test cannot run here, and the reasons it accepts.
MARKER = re.compile(r"#\s*needs:\s*(\w+)(?:\s*\([^)]*\))?\s*$")
REASONS = frozenset({"systemd", "network"})
_FENCE = re.compile(r"^\s*```\s*(\w*)\s*$")
_SHELL_BLOCKS = frozenset({"", "sh", "bash", "shell"})
#: What `scripts/dev test` runs inside this test: ruff, mypy, lint-imports, one quick test.
NARROW_TESTS = ("tests/test_cli_help.py", "-q", "-k", "version", "-p", "no:cacheprovider")


@dataclass(frozen=True)
class Line:
    """One command line of a document, continuation lines joined."""

    where: str  # "README.md:27"
    text: str

    @property
    def needs(self) -> str | None:
        """What the line's marker says it needs (systemd, network), or None."""
        found = MARKER.search(self.text)
        return found.group(1) if found else None

    @property
    def command(self) -> str:
        """The line without its trailing comment."""
        return strip_comment(self.text)

    @property
    def words(self) -> list[str]:
        """The command's words, after ``sudo -u USER`` and ``NAME=value`` assignments."""
        text = self.command.replace("$(", " ").replace(")", " ")
        try:
            words = shlex.split(text)
        except ValueError:  # not shell at all (a folder diagram): plain words will do
            words = text.split()
        if words[:1] == ["sudo"] and words[1:2] == ["-u"]:
            words = words[3:]
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            words = words[1:]
        return words

    @property
    def program(self) -> str:
        words = self.words
        if not words:
            return ""
        return "inboxd" if Path(words[0]).name == "inboxd" else words[0]

    @property
    def is_daemon(self) -> bool:
        """A line that keeps running until stopped: ``inboxd ... run`` without --once."""
        words = self.words
        if self.program == "scripts/dev":
            return words[1:2] == ["run"] and "--once" not in words
        return self.program == "inboxd" and "run" in words and "--once" not in words


def strip_comment(text: str) -> str:
    """``text`` without a ``# comment`` that starts outside quotes."""
    quote: str | None = None
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip()
    return text.rstrip()


def lines_of(text: str, name: str) -> list[Line]:
    """The ``inboxd``, ``scripts/dev`` and ``cp`` lines of the shell code blocks in a
    Markdown text, in order."""
    found: list[Line] = []
    block: str | None = None  # the open block's language ("" when unnamed), or None
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        fence = _FENCE.match(raw)
        if fence:
            block = fence.group(1) if block is None else None
            continue
        if block not in _SHELL_BLOCKS:
            continue
        start, sofar = pending if pending else (number, "")
        joined = sofar + raw.strip()
        if joined.endswith("\\"):
            pending = (start, joined[:-1].rstrip() + " ")
            continue
        pending = None
        line = Line(f"{name}:{start}", joined)
        if joined and line.program in {"inboxd", "scripts/dev", "cp"}:
            found.append(line)
    return found


def unit_lines() -> list[Line]:
    """The unit's ExecStart= commands."""
    return [
        Line(f"{UNIT.name}:{number}", raw.split("=", 1)[1])
        for number, raw in enumerate(UNIT.read_text().splitlines(), start=1)
        if raw.startswith("ExecStart=") and raw.split("=", 1)[1].strip()
    ]


def all_lines() -> list[Line]:
    found = [
        line for doc in DOCUMENTS for line in lines_of(doc.read_text(), str(doc.relative_to(REPO)))
    ]
    return found + unit_lines()


# -- the extraction itself -----------------------------------------------------------------


def test_extraction_joins_continuations_reads_markers_and_ignores_other_blocks() -> None:
    """Continuation lines are one command; a marker is read; toml and prose are not
    commands; ``sudo -u`` and variables do not hide the program."""
    text = "\n".join(
        [
            "inboxd status   # not a block",
            "```sh",
            "sudo -u inboxd /opt/inboxd/venv/bin/inboxd backup \\",
            "     /var/backups/x.db    # a comment",
            "systemctl start inboxd",
            "INBOXD_X=1 inboxd refine --root /tmp/demo",
            "inboxd ask 'what # is this' --generator gemini   # needs: network (Gemini)",
            "```",
            "```toml",
            'inboxd = "not a command"',
            "```",
            "inboxd run   # prose again, after a block that is not shell",
        ]
    )
    found = lines_of(text, "doc")
    assert [(line.where, line.program, line.needs) for line in found] == [
        ("doc:3", "inboxd", None),
        ("doc:6", "inboxd", None),
        ("doc:7", "inboxd", "network"),
    ]
    assert found[0].command.endswith("backup /var/backups/x.db")
    assert found[2].command == "inboxd ask 'what # is this' --generator gemini"


def test_the_readme_opens_with_the_two_commands_and_ci_runs_the_second() -> None:
    """The README's first block is `scripts/dev run` then `scripts/dev test`, and
    .ci/run runs exactly that test command."""
    first = lines_of(DOCUMENTS[0].read_text(), "README.md")[:2]
    assert [line.command for line in first] == ["scripts/dev run", "scripts/dev test"]
    assert [line.where for line in first] == ["README.md:4", "README.md:5"]
    ci = [
        line
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert ci == ["exec scripts/dev test"]


def test_every_skipped_line_says_why() -> None:
    """A marked line names a reason this test knows (systemd or network)."""
    for line in all_lines():
        assert line.needs is None or line.needs in REASONS, f"{line.where}: {line.text}"


# -- running them ----------------------------------------------------------------------------


class Runner:
    """Runs document lines with their paths mapped onto ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.paths = {
            "sudo -u inboxd ": "",
            "/opt/inboxd/venv/bin/inboxd": str(INBOXD),
            ".venv/bin/inboxd": str(INBOXD),
            "/var/lib/inboxd": str(base / "service-root"),
            "/var/backups/inboxd": str(base / "backups"),
            "/tmp/demo": str(base / "demo"),
        }
        (base / "backups").mkdir()  # made by the `install -d` line beside it
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("INBOXD_")}
        self.env.update(
            PATH=f"{INBOXD.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            INBOXD_VENV=sys.prefix,  # scripts/dev uses the venv running this test
            INBOXD_ROOT=str(base / "dev-root"),  # scripts/dev run's root, not the checkout's
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
        )

    def localise(self, line: Line) -> str:
        # One pass, longest first: a replacement is never replaced again.
        written = sorted(self.paths, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(w) for w in written))
        command = pattern.sub(lambda m: self.paths[m.group(0)], line.command)
        if line.program == "scripts/dev" and line.words[1:2] == ["test"]:
            command += " " + shlex.join(NARROW_TESTS)
        return command

    def run(self, line: Line) -> str:
        """Run one line; returns a failure description, or "" when it succeeded."""
        command = self.localise(line)
        log = self.base / f"line-{re.sub(r'[^A-Za-z0-9.]+', '-', line.where)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {command}" if line.is_daemon else command],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            if line.is_daemon:
                self._stop_when_ready(proc, log)
            code = proc.wait(timeout=TIMEOUT * 15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
        if code == 0:
            return ""
        tail = log.read_text(errors="replace")[-3000:]
        return f"{line.where}: `{line.text}`\n  ran `{command}`\n  exit {code}; output:\n{tail}"

    @staticmethod
    def _stop_when_ready(proc: subprocess.Popen[bytes], log: Path) -> None:
        def ready() -> bool:
            return b'"event": "daemon.ready"' in log.read_bytes()

        # scripts/dev may set up first; a daemon that exits or never gets ready fails
        # its line on its exit code or its wait's timeout.
        ended_or_ready = poll_until(lambda: proc.poll() is not None or ready(), TIMEOUT * 10, 0.2)
        if ended_or_ready and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)


def _venv_is_set_up() -> str:
    """Why scripts/dev would install into this venv (it must not, from a test), or ""."""
    marker = Path(sys.prefix) / ".installed"
    if not marker.exists():
        return f"{sys.prefix} was not made by `scripts/dev setup` (no .installed)"
    if (REPO / "pyproject.toml").stat().st_mtime > marker.stat().st_mtime:
        return f"pyproject.toml is newer than {marker}: run `scripts/dev setup` first"
    return ""


@pytest.mark.slow
def test_every_command_in_the_readmes_runs_as_typed(tmp_path: Path) -> None:
    """Each document's lines run in order on temp roots and exit 0 (daemons: 0 after
    SIGTERM once ready); only lines marked as needing systemd or a network are skipped."""
    problem = _venv_is_set_up()
    assert not problem, problem
    lines = all_lines()
    programs = {line.command for line in lines}
    assert {"scripts/dev run", "scripts/dev test"} <= programs
    runner = Runner(tmp_path)
    failures = [failure for line in lines if line.needs is None and (failure := runner.run(line))]
    assert not failures, "\n\n".join(failures)
