"""The shipped systemd unit and environment-file example."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD_DIR = Path(__file__).resolve().parent.parent / "systemd"
UNIT = SYSTEMD_DIR / "inboxd.service"
ENV_EXAMPLE = SYSTEMD_DIR / "inboxd.env.example"

# Shapes of real credentials: a Google API key, or any *KEY/TOKEN/SECRET with a value.
_GOOGLE_KEY = re.compile(r"AIza[0-9A-Za-z_\-]{20,}")
_SECRET_ASSIGNMENT = re.compile(r"^\s*[A-Z0-9_]*(KEY|TOKEN|SECRET|PASSWORD)[A-Z0-9_]*=\S", re.M)


def _directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment line of a unit file, in order."""
    section = ""
    result: list[tuple[str, str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        result.append((section, key.strip(), value.strip()))
    return result


def _values(section: str, key: str) -> list[str]:
    return [v for s, k, v in _directives(UNIT.read_text()) if s == section and k == key]


def _sandbox_unit(tmp_path: Path, text: str) -> Path:
    """The unit with only ExecStart's binary replaced by an executable that exists here."""
    stub = tmp_path / "inboxd"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    rewritten, count = re.subn(
        r"^ExecStart=/opt/inboxd/venv/bin/inboxd ",
        f"ExecStart={stub} ",
        text,
        flags=re.M,
    )
    assert count == 1, "ExecStart must name /opt/inboxd/venv/bin/inboxd exactly once"
    unit = tmp_path / "inboxd.service"
    unit.write_text(rewritten)
    return unit


def _verify(unit: Path) -> tuple[int, str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    proc = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` reports nothing about the unit (only ExecStart's path changed)."""
    unit = _sandbox_unit(tmp_path, UNIT.read_text())
    original = UNIT.read_text().splitlines()
    changed = [a for a, b in zip(original, unit.read_text().splitlines(), strict=True) if a != b]
    assert [line.split("=", 1)[0] for line in changed] == ["ExecStart"]
    returncode, output = _verify(unit)
    # verify exits 0 even for unknown keys and bad values (it only warns), so any
    # line naming the unit is a failure.
    complaints = [line for line in output.splitlines() if "inboxd.service" in line]
    assert returncode == 0, output
    assert complaints == [], output


def test_systemd_analyze_verify_would_catch_a_typo(tmp_path: Path) -> None:
    """The verify check is not vacuous: a misspelt directive and a bad value are reported."""
    text = UNIT.read_text().replace("ProtectHome=yes", "ProtectHome=yess\nProtectHomee=yes")
    _, output = _verify(_sandbox_unit(tmp_path, text))
    assert "ProtectHomee" in output
    assert "yess" in output


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("Unit", "StartLimitIntervalSec", None),
        ("Unit", "StartLimitBurst", None),
        ("Service", "Type", "notify"),
        ("Service", "NotifyAccess", "main"),
        ("Service", "WatchdogSec", "60"),
        ("Service", "Restart", "on-failure"),
        ("Service", "RestartSec", "5"),
        ("Service", "TimeoutStopSec", "90"),
        ("Service", "KillSignal", "SIGTERM"),
        ("Service", "ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Service", "User", "inboxd"),
        ("Service", "Group", "inboxd"),
        ("Service", "EnvironmentFile", "-/etc/inboxd/inboxd.env"),
        ("Service", "NoNewPrivileges", "yes"),
        ("Service", "ProtectSystem", "strict"),
        ("Service", "ProtectHome", "yes"),
        ("Service", "PrivateTmp", "yes"),
        ("Service", "PrivateDevices", "yes"),
        ("Service", "ProtectKernelTunables", "yes"),
        ("Service", "ProtectKernelModules", "yes"),
        ("Service", "ProtectControlGroups", "yes"),
        ("Service", "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("Service", "LockPersonality", "yes"),
        ("Service", "RestrictRealtime", "yes"),
        ("Service", "SystemCallArchitectures", "native"),
        ("Service", "ReadWritePaths", "/var/lib/inboxd"),
        ("Service", "UMask", "0077"),
    ],
)
def test_unit_sets_directive(section: str, key: str, value: str | None) -> None:
    """The unit sets each required directive once, in the right section, to the agreed value."""
    found = _values(section, key)
    assert len(found) == 1, f"[{section}] {key}= appears {len(found)} times"
    if value is not None:
        assert found[0] == value


def test_exec_start_runs_the_daemon_with_json_logs() -> None:
    """ExecStart runs `inboxd run` on /var/lib/inboxd with JSON logs for journald."""
    assert _values("Service", "ExecStart") == [
        "/opt/inboxd/venv/bin/inboxd run --root /var/lib/inboxd --log-format json"
    ]


def test_hugging_face_is_offline() -> None:
    """The service never reaches the Hugging Face hub: HF_HUB_OFFLINE=1 is set."""
    environment = " ".join(_values("Service", "Environment")).split()
    assert "HF_HUB_OFFLINE=1" in environment


def test_timeouts_leave_room_for_model_load_and_drain() -> None:
    """Start-up may take minutes (model load); stop allows a drain before SIGKILL."""
    start = _values("Service", "TimeoutStartSec")
    assert len(start) == 1 and int(start[0]) >= 120
    assert int(_values("Service", "TimeoutStopSec")[0]) > int(_values("Service", "WatchdogSec")[0])


@pytest.mark.parametrize("path", [UNIT, ENV_EXAMPLE], ids=lambda p: p.name)
def test_no_secret_value_is_shipped(path: Path) -> None:
    """Neither the unit nor the env example carries an API key value."""
    text = path.read_text()
    assert _GOOGLE_KEY.search(text) is None
    assert _SECRET_ASSIGNMENT.search(text) is None


def test_unit_takes_the_key_only_from_the_environment_file() -> None:
    """GEMINI_API_KEY is not set in the unit; it comes from EnvironmentFile."""
    unit_env = " ".join(_values("Service", "Environment"))
    assert "GEMINI_API_KEY" not in unit_env
    assert _values("Service", "EnvironmentFile") == ["-/etc/inboxd/inboxd.env"]
    assert re.search(r"^GEMINI_API_KEY=$", ENV_EXAMPLE.read_text(), re.M) is not None


def test_env_example_assignments_are_inboxd_or_gemini() -> None:
    """Every assignment in the env example, active or commented, is GEMINI_API_KEY or INBOXD_*."""
    names = re.findall(r"^#?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M)
    assert "GEMINI_API_KEY" in names
    assert any(name.startswith("INBOXD_") for name in names)
    assert all(name == "GEMINI_API_KEY" or name.startswith("INBOXD_") for name in names)
