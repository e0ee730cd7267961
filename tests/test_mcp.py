"""``inboxd mcp``: the Model Context Protocol over stdio, driven by the official SDK's own
client (``stdio_client`` + ``ClientSession``) against a real ``inboxd mcp`` process on a
refined root (real pairs, the real embedding model, SmolLM2 for ``ask``). Its answers are
the ones ``inboxd search``, ``status`` and ``report gaps`` give; it writes nothing; stdout
carries the protocol only; with a daemon running, searches go through its socket."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import rag_corpus
from conftest import INBOXD, TIMEOUT, Daemon, daemon_env, query, run_cli
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from daemon.core.catalog import load_catalog
from daemon.providers.generators.llama import packaged_gguf

pytestmark = pytest.mark.slow

TOOLS = {"search", "coverage", "gaps", "status", "ask"}
QUESTION = "How is the Relative Strength Index calculated?"
OFF_TOPIC = "What is the boiling point of water on Mars in kelvin?"
# SmolLM2 writes the answer; kept short, on one thread (llama.cpp's threads wait on each
# other, so more threads than free cores is slower on a shared machine).
FAST = {
    "INBOXD_RAG__MAX_TOKENS": "40",
    "INBOXD_RAG__CONTEXT_SIZE": "1024",
    "INBOXD_RAG__THREADS": "1",
}

Call = tuple[str, dict[str, Any]]


def run_session(root: Path, calls: list[Call], errlog: Path, **env: str) -> dict[str, Any]:
    """Start `inboxd --root ROOT mcp` under the SDK's stdio client, list the tools, make
    ``calls`` in order in one session; returns the tool list and each call's result."""

    async def session() -> dict[str, Any]:
        server = StdioServerParameters(
            command=str(INBOXD), args=["--root", str(root), "mcp"], env=daemon_env(**env)
        )
        with errlog.open("w") as err, anyio.fail_after(8 * TIMEOUT):
            async with (
                stdio_client(server, errlog=err) as (read, write),
                ClientSession(read, write) as client,
            ):
                init = await client.initialize()
                listed = await client.list_tools()
                results = [
                    await client.call_tool(name, arguments, read_timeout_seconds=4 * TIMEOUT)
                    for name, arguments in calls
                ]
        return {"init": init, "tools": listed.tools, "results": results}

    return anyio.run(session)


def structured(result: Any) -> dict[str, Any]:
    """A successful call's structured content (also sent as JSON text)."""
    assert not result.is_error, result.content
    assert json.loads(result.content[0].text) == result.structured_content
    data: dict[str, Any] = result.structured_content
    return data


def db_fingerprint(root: Path) -> dict[str, str]:
    """sha256 of the DB and its WAL, to prove a session wrote nothing."""
    state = root / "state"
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(state.glob("inboxd.db*"))
        if p.suffix != ".db-shm"
    }


def active_ids(root: Path) -> set[int]:
    rows = query(root, "SELECT id FROM pairs WHERE id NOT IN (SELECT pair_id FROM duplicates)")
    return {pid for (pid,) in rows}


SCRIPT: dict[str, Call] = {
    "search": ("search", {"query": QUESTION, "k": 4}),
    "search_rsi_alias": ("search", {"query": "overbought", "indicator": "RSI", "k": 5}),
    "search_quality": ("search", {"query": QUESTION, "min_quality": 80, "k": 5}),
    "coverage_rsi": ("coverage", {"indicator": "Relative Strength Index"}),
    "coverage_session": ("coverage", {"session": rag_corpus.indicator("rsi").session}),
    "coverage_unknown": ("coverage", {"indicator": "no-such-indicator"}),
    "coverage_neither": ("coverage", {}),
    "gaps": ("gaps", {}),
    "status": ("status", {}),
    "ask": ("ask", {"question": QUESTION}),
    "ask_off_topic": ("ask", {"question": OFF_TOPIC}),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, rag_template: Path) -> Path:
    """A private copy of the refined RAG corpus."""
    return rag_corpus.copy_of(rag_template, tmp_path_factory.mktemp("mcp"))


@pytest.fixture(scope="module")
def session(root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One MCP session on the refined root running every call of SCRIPT, with the DB's
    fingerprint before and after it and the server's stderr."""
    errlog = tmp_path_factory.mktemp("mcp-log") / "stderr.log"
    before = db_fingerprint(root)
    ran = run_session(root, list(SCRIPT.values()), errlog, INBOXD_RAG__GENERATOR="llama", **FAST)
    return {
        **ran,
        "by_name": dict(zip(SCRIPT, ran["results"], strict=True)),
        "before": before,
        "after": db_fingerprint(root),
        "stderr": errlog.read_text(),
    }


def test_the_server_offers_five_read_only_tools_with_schemas(session: dict[str, Any]) -> None:
    """initialize names the server and says how to use it; tools/list gives search,
    coverage, gaps, status and ask, each read-only, with an input and output schema."""
    assert session["init"].server_info.name == "inboxd"
    assert "coverage" in session["init"].instructions
    tools = {tool.name: tool for tool in session["tools"]}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and tool.output_schema is not None
        assert tool.annotations.read_only_hint is True
    search = tools["search"].input_schema
    assert search["required"] == ["query"]
    assert {"k", "indicator", "min_quality", "max_distance", "mode"} <= set(search["properties"])
    assert tools["ask"].input_schema["required"] == ["question"]


def test_search_returns_what_inboxd_search_returns(root: Path, session: dict[str, Any]) -> None:
    """The search tool's hits are `inboxd search --json`'s, active pairs each with its
    distance (hybrid, like the CLI, cuts nothing unless asked; these are within 0.5),
    searched in-process when no daemon runs."""
    found = structured(session["by_name"]["search"])
    assert found["via"] == "in-process" and found["max_distance"] is None
    hits = found["hits"]
    cli = run_cli(root, "search", QUESTION, "-k", "4", "--json")
    assert cli.returncode == 0, cli.stderr
    assert hits == json.loads(cli.stdout)
    assert hits and {h["pair_id"] for h in hits} <= active_ids(root)
    assert all(h["distance"] is not None and h["distance"] <= 0.5 for h in hits)
    assert hits[0]["indicator"] == "rsi"


def test_search_filters_by_indicator_alias_and_quality(session: dict[str, Any]) -> None:
    """`indicator` takes an alias (RSI) and keeps that indicator's pairs only;
    `min_quality` keeps pairs scoring at least that."""
    by_alias = structured(session["by_name"]["search_rsi_alias"])["hits"]
    assert by_alias and {h["indicator"] for h in by_alias} == {"rsi"}
    good = structured(session["by_name"]["search_quality"])["hits"]
    assert good and all(h["quality"] >= 80 for h in good)


def test_coverage_of_an_indicator_counts_what_the_db_holds(
    root: Path, session: dict[str, Any]
) -> None:
    """Coverage by name: pairs and active pairs as in the DB, the target of 75, what is
    still needed, and the plan's question types split into covered and missing."""
    rsi = structured(session["by_name"]["coverage_rsi"])
    assert rsi["indicator"] == "rsi" and rsi["known_to_catalog"] is True
    current = (
        "SELECT count(DISTINCT p.id) FROM pairs p JOIN pair_sources s ON s.pair_id = p.id"
        " JOIN batches b ON b.id = s.batch_id WHERE p.indicator = 'rsi' AND b.state = 'indexed'"
    )
    assert rsi["pairs"] == query(root, current)[0][0]
    of_rsi = {pid for (pid,) in query(root, "SELECT id FROM pairs WHERE indicator = 'rsi'")}
    assert rsi["active"] == len(active_ids(root) & of_rsi)
    assert rsi["active"] < rsi["pairs"]  # the planted copies were folded
    assert rsi["target"] == 75 and rsi["need"] == 75 - rsi["active"]
    types = rsi["question_types"]
    if types["labelled"]:
        assert sorted(types["covered"] + types["missing"]) == sorted(
            ["definition", "calculation", "interpretation", "signal", "limitation",
             "crypto_specific", "comparison", "example"]
        )  # fmt: skip


def test_coverage_of_a_session_lists_each_of_its_indicators(session: dict[str, Any]) -> None:
    """Coverage by session: its progress and one coverage row per catalog indicator."""
    number = rag_corpus.indicator("rsi").session
    got = structured(session["by_name"]["coverage_session"])
    expected = [i.id for i in load_catalog().indicators_for_session(number)]
    assert got["number"] == number and got["kind"] == "plan"
    assert [row["indicator"] for row in got["indicators"]] == expected
    assert got["active"] == sum(row["active"] for row in got["indicators"])


def test_bad_coverage_requests_are_tool_errors_the_agent_can_read(
    session: dict[str, Any],
) -> None:
    """An unknown indicator, or neither indicator nor session, is an error result whose
    text says what is wrong; the session goes on."""
    unknown = session["by_name"]["coverage_unknown"]
    assert unknown.is_error
    assert "the catalog has no indicator 'no-such-indicator'" in unknown.content[0].text
    neither = session["by_name"]["coverage_neither"]
    assert neither.is_error and "give either an indicator" in neither.content[0].text


def test_gaps_are_the_gap_report(root: Path, session: dict[str, Any]) -> None:
    """The gaps tool gives what `inboxd report gaps --json` reports (without writing)."""
    cli = run_cli(root, "report", "gaps", "--json")
    assert cli.returncode == 0, cli.stderr
    report = json.loads(cli.stdout)
    report.pop("at")
    assert structured(session["by_name"]["gaps"]) == report


def test_status_gives_the_headline_of_inboxd_status(root: Path, session: dict[str, Any]) -> None:
    """The status tool's headline, batches and refinement numbers are `inboxd status`'s."""
    got = structured(session["by_name"]["status"])
    cli = run_cli(root, "status", "--json")
    assert cli.returncode == 0, cli.stderr
    report = json.loads(cli.stdout)
    for key in ("headline", "batches", "pairs", "refinement"):
        assert got[key] == report[key], key
    assert got["batches"]["indexed"] > 0


def test_ask_answers_with_the_real_model_from_retrieved_pairs(
    root: Path, session: dict[str, Any]
) -> None:
    """ask with the configured SmolLM2: text, sources within 0.5 (active pairs), and
    citations only among them: `inboxd ask --json`'s fields."""
    answer = structured(session["by_name"]["ask"])
    assert answer["generator"] == f"llama/{packaged_gguf().name}"  # type: ignore[union-attr]
    assert answer["declined"] is False and answer["text"].strip()
    ids = {s["pair_id"] for s in answer["sources"]}
    assert ids and ids <= active_ids(root)
    assert all(s["distance"] <= 0.5 for s in answer["sources"])
    assert set(answer["cited"]) <= ids


def test_ask_declines_a_question_nothing_answers(session: dict[str, Any]) -> None:
    """Off-topic: "I don't know", no sources, the closest pair beyond the threshold."""
    answer = structured(session["by_name"]["ask_off_topic"])
    assert answer["declined"] is True and answer["text"].startswith("I don't know")
    assert answer["sources"] == [] and answer["closest"][1] > 0.5


def test_a_session_writes_nothing_and_logs_to_stderr(session: dict[str, Any]) -> None:
    """The DB and its WAL are byte-identical after the session; the server's log lines
    (mcp.started, one mcp.called per call) went to stderr."""
    assert session["after"] == session["before"]
    events = [json.loads(line) for line in session["stderr"].splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    assert "mcp.started" in names
    called = [e for e in events if e["event"] == "mcp.called"]
    assert [e["tool"] for e in called] == [name for name, _ in SCRIPT.values()]
    assert [e["ok"] for e in called] == [not r.is_error for r in session["results"]]


def test_stdout_carries_only_json_rpc(root: Path, tmp_path: Path) -> None:
    """Raw JSON-RPC over the pipes: every line the server writes to stdout is a JSON-RPC
    message, even while it loads the model; the logs are on stderr."""
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "search", "arguments": {"query": "RSI", "k": 1}},
        },
    ]
    lines: list[str] = []
    with (
        (tmp_path / "stderr.log").open("wb") as err,
        subprocess.Popen(
            [str(INBOXD), "--root", str(root), "mcp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=daemon_env(),
            text=True,
        ) as server,
    ):
        assert server.stdin is not None and server.stdout is not None
        watchdog = threading.Timer(4 * TIMEOUT, server.kill)  # a silent server fails, not hangs
        watchdog.start()
        try:
            for message in messages:
                server.stdin.write(json.dumps(message) + "\n")
                server.stdin.flush()
                if "id" in message:  # wait for its reply before sending on
                    lines.append(server.stdout.readline())
            server.stdin.close()  # the client is done: the server exits
            lines += server.stdout.read().splitlines()
            assert server.wait(TIMEOUT) == 0
        finally:
            watchdog.cancel()
            server.kill()
    replies = [json.loads(line) for line in lines]
    assert all(r["jsonrpc"] == "2.0" for r in replies)
    by_id = {r["id"]: r for r in replies if "id" in r}
    assert by_id[1]["result"]["serverInfo"]["name"] == "inboxd"
    hits = by_id[2]["result"]["structuredContent"]["hits"]
    assert len(hits) == 1 and hits[0]["indicator"] == "rsi"
    assert '"event": "mcp.started"' in (tmp_path / "stderr.log").read_text()


def test_with_a_daemon_running_searches_go_through_its_socket(
    root: Path, tmp_path: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """While `inboxd run` serves the root, the MCP search and ask retrieve through
    state/search.sock (the daemon logs each search.served) and return the same hits."""
    in_process = run_session(root, [SCRIPT["search"]], tmp_path / "alone.log")
    daemon = make_daemon(root).start()
    daemon.wait_for("search.serving")
    served_before = len(daemon.events("search.served"))
    through = run_session(
        root,
        [SCRIPT["search"], ("ask", {"question": QUESTION})],
        tmp_path / "with-daemon.log",
        INBOXD_RAG__GENERATOR="none",
    )
    found, answer = (structured(r) for r in through["results"])
    assert found["via"] == "daemon" and answer["via"] == "daemon"
    assert found["hits"] == structured(in_process["results"][0])["hits"]
    assert answer["sources"]
    daemon.wait_until(
        lambda: len(daemon.events("search.served")) >= served_before + 2,
        what="the daemon to serve the MCP server's searches",
    )
    assert daemon.terminate() == 0
