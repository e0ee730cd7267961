"""The sd_notify client, against real Unix datagram sockets."""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from pathlib import Path

import pytest

from daemon.runtime.notify import SystemdNotifier


def _receive(sock: socket.socket) -> bytes:
    return sock.recv(65536)


@pytest.fixture
def listener(notify_socket: tuple[socket.socket, str]) -> tuple[socket.socket, str]:
    """conftest's stand-in for systemd's notify socket."""
    return notify_socket


def _notifier(address: str, **extra: str) -> SystemdNotifier:
    return SystemdNotifier.from_env({"NOTIFY_SOCKET": address, **extra})


def test_ready_without_status_sends_ready_only(listener: tuple[socket.socket, str]) -> None:
    """ready() sends exactly b"READY=1"."""
    sock, path = listener
    notifier = _notifier(path)
    assert notifier.enabled is True
    notifier.ready()
    assert _receive(sock) == b"READY=1"


def test_ready_with_status_sends_both_lines(listener: tuple[socket.socket, str]) -> None:
    """ready(status) sends READY=1 and STATUS= in one datagram, READY first."""
    sock, path = listener
    _notifier(path).ready("watching 3 agents")
    assert _receive(sock) == b"READY=1\nSTATUS=watching 3 agents"


def test_watchdog_stopping_status_are_byte_exact(listener: tuple[socket.socket, str]) -> None:
    """watchdog(), stopping() and status() each send their one assignment, in order."""
    sock, path = listener
    notifier = _notifier(path)
    notifier.watchdog()
    notifier.stopping()
    notifier.status("draining: 2 batches left")
    assert _receive(sock) == b"WATCHDOG=1"
    assert _receive(sock) == b"STOPPING=1"
    assert _receive(sock) == b"STATUS=draining: 2 batches left"


def test_status_is_utf8_and_flattened_to_one_line(listener: tuple[socket.socket, str]) -> None:
    """A status with newlines stays one STATUS= assignment; non-ASCII goes out as UTF-8."""
    sock, path = listener
    _notifier(path).status("imported 12 pairs\nfrom outbox/agent-ä")
    assert _receive(sock) == "STATUS=imported 12 pairs from outbox/agent-ä".encode()


def test_status_with_undecodable_name_does_not_raise(listener: tuple[socket.socket, str]) -> None:
    """A surrogate-escaped file name in a status is sent with a replacement character."""
    sock, path = listener
    _notifier(path).status("bad name " + os.fsdecode(b"\xff.json"))
    assert _receive(sock) == b"STATUS=bad name ?.json"


def test_reloading_sends_monotonic_timestamp(listener: tuple[socket.socket, str]) -> None:
    """reloading() sends RELOADING=1 and the CLOCK_MONOTONIC time in microseconds."""
    sock, path = listener
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    _notifier(path).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    match = re.fullmatch(rb"RELOADING=1\nMONOTONIC_USEC=(\d+)", _receive(sock))
    assert match is not None
    assert before <= int(match.group(1)) <= after


def test_notify_reports_whether_it_was_sent(listener: tuple[socket.socket, str]) -> None:
    """notify() joins assignments with newlines and returns True when the datagram went out."""
    sock, path = listener
    assert _notifier(path).notify("STATUS=a", "ERRNO=0") is True
    assert _receive(sock) == b"STATUS=a\nERRNO=0"


def test_abstract_socket_address() -> None:
    """NOTIFY_SOCKET=@name reaches a socket in the abstract namespace."""
    name = f"inboxd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.bind("\0" + name)
        notifier = _notifier("@" + name)
        assert notifier.enabled is True
        notifier.ready("up")
        assert _receive(sock) == b"READY=1\nSTATUS=up"


def test_without_notify_socket_everything_is_a_noop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without NOTIFY_SOCKET the notifier is disabled and opens no socket at all."""

    def no_socket(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("a disabled notifier must not create a socket")

    notifier = SystemdNotifier.from_env({})
    monkeypatch.setattr(socket, "socket", no_socket)
    assert notifier.enabled is False
    notifier.ready("x")
    notifier.watchdog()
    notifier.stopping()
    notifier.reloading()
    notifier.status("x")
    assert notifier.notify("READY=1") is False


def test_from_env_reads_os_environ_by_default(
    monkeypatch: pytest.MonkeyPatch, listener: tuple[socket.socket, str]
) -> None:
    """from_env() with no argument reads the process environment."""
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    SystemdNotifier.from_env().watchdog()
    assert _receive(sock) == b"WATCHDOG=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert SystemdNotifier.from_env().enabled is False


@pytest.mark.parametrize("value", ["", "relative/notify.sock", "vsock:2:1234"])
def test_unusable_socket_values_disable_the_notifier(value: str) -> None:
    """An empty, relative or non-Unix NOTIFY_SOCKET disables the notifier instead of guessing."""
    notifier = _notifier(value)
    assert notifier.enabled is False
    assert notifier.notify("READY=1") is False


def test_missing_socket_path_does_not_raise(tmp_path: Path) -> None:
    """A NOTIFY_SOCKET path with nothing bound to it makes every send a silent no-op."""
    notifier = _notifier(str(tmp_path / "gone.sock"))
    assert notifier.enabled is True
    notifier.ready("x")
    notifier.watchdog()
    notifier.stopping()
    notifier.reloading()
    notifier.status("x")
    assert notifier.notify("READY=1") is False


def test_closed_listener_does_not_raise(tmp_path: Path) -> None:
    """A socket file whose listener has gone away (connection refused) does not raise."""
    path = tmp_path / "closed.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
    notifier = _notifier(str(path))
    notifier.watchdog()
    assert notifier.notify("WATCHDOG=1") is False


def test_overlong_socket_path_does_not_raise(tmp_path: Path) -> None:
    """A path too long for sun_path is a failed send, not an exception."""
    notifier = _notifier("/" + "x" * 200)
    notifier.ready()
    assert notifier.notify("READY=1") is False


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    """WATCHDOG_USEC=60000000 (WatchdogSec=60) means a ping every 30 seconds."""
    notifier = SystemdNotifier.from_env({"WATCHDOG_USEC": "60000000"})
    assert notifier.watchdog_interval() == pytest.approx(30.0)


def test_watchdog_interval_for_this_pid() -> None:
    """WATCHDOG_PID naming this process keeps the interval."""
    env = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    assert SystemdNotifier.from_env(env).watchdog_interval() == pytest.approx(0.5)


def test_watchdog_interval_for_another_pid_is_none() -> None:
    """WATCHDOG_PID naming another process (inherited variables) means no pings."""
    env = {"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert SystemdNotifier.from_env(env).watchdog_interval() is None


@pytest.mark.parametrize("value", [None, "", "0", "-5", "soon"])
def test_watchdog_interval_unset_or_invalid_is_none(value: str | None) -> None:
    """A missing, zero, negative or malformed WATCHDOG_USEC means the watchdog is off."""
    env = {} if value is None else {"WATCHDOG_USEC": value}
    assert SystemdNotifier.from_env(env).watchdog_interval() is None
