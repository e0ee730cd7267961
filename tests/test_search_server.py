"""The running daemon answers ``inboxd search`` over ``state/search.sock`` with its
loaded model and live index; with no daemon, ``inboxd search`` searches in-process and
finds the same pairs."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Daemon, copy_tree, query, run_cli

from daemon.search.server import SOCKET_NAME, ask_daemon

pytestmark = pytest.mark.slow

QUESTION = "how is the simple moving average computed"


def all_indexed(root: Path) -> bool:
    states = {state for (state,) in query(root, "SELECT state FROM batches")}
    return states == {"indexed"}


def test_daemon_answers_search_and_a_stopped_daemon_leaves_it_to_the_cli(
    root: Path, examples_root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """A running daemon answers `inboxd search` over its socket; once it stops, the CLI
    searches in-process with the same results."""
    daemon = make_daemon(root).start()
    copy_tree(examples_root / "outbox", root / "outbox")
    daemon.wait_until(lambda: all_indexed(root), what="every example batch indexed")
    sock = root / "state" / SOCKET_NAME
    assert sock.is_socket()
    assert daemon.events("search.serving")

    served = ask_daemon(root / "state", QUESTION, {"k": 3, "mode": "hybrid"})
    assert served is not None and served[0]["indicator"] == "sma"
    via_cli = run_cli(root, "search", QUESTION, "-k", "3", "--json")
    assert via_cli.returncode == 0, via_cli.stderr
    # Both answers came from the daemon: it logged one search.served for each.
    daemon.wait_until(lambda: len(daemon.events("search.served")) == 2, what="2 served")
    assert [h["pair_id"] for h in json.loads(via_cli.stdout)] == [h["pair_id"] for h in served]

    assert daemon.terminate() == 0
    assert not sock.exists()
    in_process = run_cli(root, "search", QUESTION, "-k", "3", "--json")
    assert in_process.returncode == 0, in_process.stderr
    assert json.loads(in_process.stdout) == json.loads(via_cli.stdout)


def test_a_bad_request_gets_an_error_reply_and_the_daemon_serves_on(
    root: Path, examples_root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """A malformed request on the search socket gets an error reply; the next query is
    still served."""
    daemon = make_daemon(root).start()
    copy_tree(examples_root / "outbox", root / "outbox")
    daemon.wait_until(lambda: all_indexed(root), what="every example batch indexed")
    for request in (b"not json\n", b'{"query": "x", "drop_table": 1}\n', b"[1, 2]\n"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(10)
            client.connect(str(root / "state" / SOCKET_NAME))
            client.sendall(request)
            reply = json.loads(client.makefile("rb").readline())
        assert reply["ok"] is False and "bad request" in reply["error"]
    assert daemon.alive
    assert ask_daemon(root / "state", QUESTION, {"k": 1}) is not None


def test_a_daemon_reads_the_spelling_vocabulary_at_start_and_serves_misspelled_queries(
    root: Path, examples_root: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """A daemon started on an indexed root reads its questions' words beside the loop
    (search.vocabulary_ready), so a misspelled query it serves waits for no such read."""
    copy_tree(examples_root / "outbox", root / "outbox")
    once = run_cli(root, "run", "--once")
    assert once.returncode == 0, once.stderr
    daemon = make_daemon(root).start()
    ready = daemon.wait_for("search.vocabulary_ready")
    assert ready["words"] > 20  # the example files' questions
    served = ask_daemon(root / "state", "how is the simple moving avrage computed", {"k": 1})
    assert served is not None and served[0]["indicator"] == "sma"
