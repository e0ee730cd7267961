"""``inboxd mcp``: the Model Context Protocol over stdio, so the agent that writes the
pairs can look at the knowledge base while it writes (what already exists, what is
still missing, how an answer would come out).

Built on the official SDK's ``MCPServer`` (the successor of ``FastMCP``): each tool is
a typed function whose signature becomes the input schema and whose dict result goes
out as structured content. The tools' bodies live in ``daemon.agent.tools``; this module
only describes them to the client and turns our errors into tool errors the agent reads.

stdout carries the protocol and nothing else: the SDK points fd 1 at stderr while it
serves, and our logs go to stderr as for every command but ``run``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from daemon import __version__
from daemon.agent.tools import AgentTools
from daemon.core.config import Config
from daemon.core.errors import InboxdError
from daemon.core.logs import Event, get_logger
from daemon.search.searcher import Mode

INSTRUCTIONS = (
    "inboxd holds the refined question/answer knowledge base about crypto market"
    " indicators that research agents deliver. Before writing pairs for an indicator, call"
    " `coverage` (what exists, which question types and difficulties are missing against"
    " the target) and `search` (a pair that asks what a close hit already asks adds nothing:"
    " it is folded as a duplicate). `gaps` lists what the whole plan still lacks, `status`"
    " the headline numbers, `ask` answers from the knowledge base. All tools are read-only."
)
# Nothing here changes the knowledge base, and asking twice gives the same answer.
_READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)

Query = Annotated[str, Field(min_length=1, description="What to look for, in plain words.")]
Count = Annotated[int | None, Field(ge=1, le=100, description="How many pairs (default 5).")]
IndicatorName = Annotated[
    str | None,
    Field(description="Only this indicator: its id, name or alias (rsi, RSI, Relative ...)."),
]
Quality = Annotated[
    float | None, Field(ge=0, le=100, description="Only pairs scoring at least this (0-100).")
]
Distance = Annotated[
    float | None,
    Field(
        ge=0,
        le=2,
        description="Cosine distance cut-off: dense mode drops hits past it (default 0.5);"
        " hybrid cuts nothing unless given, then keeps BM25 matches.",
    ),
]
SearchMode = Annotated[
    Mode, Field(description="dense: embeddings; lexical: BM25; hybrid: both fused.")
]
SessionNumber = Annotated[int | None, Field(ge=1, description="A session number of the plan.")]


class _Calls:
    """Runs the tools one at a time (the SDK calls sync tools from worker threads) and
    turns our errors into messages for the agent."""

    def __init__(self, tools: AgentTools) -> None:
        self.tools = tools
        self._lock = threading.Lock()

    def __call__(self, name: str, work: Callable[[AgentTools], dict[str, Any]]) -> dict[str, Any]:
        started = time.monotonic()
        error: str | None = None
        try:
            with self._lock:
                return work(self.tools)
        except InboxdError as exc:
            error = str(exc)
            raise ToolError(error) from exc
        finally:
            get_logger().info(
                Event.MCP_CALLED,
                tool=name,
                ok=error is None,
                error=error,
                duration_ms=round((time.monotonic() - started) * 1000),
            )


def build_server(tools: AgentTools, log_level: str = "warning") -> MCPServer:
    """An MCP server offering ``search``, ``coverage``, ``gaps``, ``status`` and ``ask``."""
    server: MCPServer = MCPServer(
        "inboxd",
        version=__version__,
        instructions=INSTRUCTIONS,
        # The SDK logs every request at INFO; our own events say what matters.
        log_level="DEBUG" if log_level == "debug" else "WARNING",
    )
    call = _Calls(tools)

    @server.tool(annotations=_READ_ONLY)
    def search(
        query: Query,
        k: Count = None,
        indicator: IndicatorName = None,
        min_quality: Quality = None,
        max_distance: Distance = None,
        mode: SearchMode = "hybrid",
    ) -> dict[str, Any]:
        """Find the pairs already in the knowledge base that answer a query, best first.

        Each hit has its pair id, question, answer, indicator, quality (0-100) and tier,
        and its cosine distance to the query (0 = same meaning; under 0.5 = relevant).
        """
        return call(
            "search",
            lambda t: t.search(
                query,
                k=k,
                indicator=indicator,
                min_quality=min_quality,
                max_distance=max_distance,
                mode=mode,
            ),
        )

    @server.tool(annotations=_READ_ONLY)
    def coverage(indicator: IndicatorName = None, session: SessionNumber = None) -> dict[str, Any]:
        """How far an indicator (or a whole session) is from the plan's target.

        Give one of `indicator` or `session`. For an indicator: pairs delivered, active
        pairs (duplicates folded), the target, how many are still needed, average
        quality, and the question types and difficulty levels covered and missing. For a
        session: its progress and the same for each of its indicators.
        """
        return call("coverage", lambda t: t.coverage(indicator=indicator, session=session))

    @server.tool(annotations=_READ_ONLY)
    def gaps() -> dict[str, Any]:
        """The current gap list of the whole plan: indicators without pairs or below
        target, question types and difficulties missing per indicator, sessions not
        delivered, near-empty categories, names the catalog does not know."""
        return call("gaps", lambda t: t.gaps())

    @server.tool(annotations=_READ_ONLY)
    def status() -> dict[str, Any]:
        """The headline numbers: sessions done/partial/missing, indicators covered,
        pairs, active pairs, average quality, the success tier reached, batches by state,
        duplicates and index size."""
        return call("status", lambda t: t.status())

    @server.tool(annotations=_READ_ONLY)
    def ask(
        question: Query,
        k: Annotated[
            int | None, Field(ge=1, le=50, description="Pairs to retrieve (default 4).")
        ] = None,
    ) -> dict[str, Any]:
        """Answer a question from the knowledge base.

        Returns the retrieved pairs (`sources`, each with its distance) and, when a model
        is configured, its answer in `text` with the pair ids it cites (`cited`); with no
        model configured `text` is the numbered context. `declined` is true when no pair
        is close enough to answer from.
        """
        return call("ask", lambda t: t.ask(question, k=k))

    return server


def serve(config: Config) -> None:
    """Serve the tools over stdin/stdout until the client closes the connection."""
    tools = AgentTools(config, get_logger())
    server = build_server(tools, config.log_level)
    get_logger().info(Event.MCP_STARTED, root=str(config.root), version=__version__)
    try:
        server.run("stdio")
    finally:
        tools.close()
