"""``inboxd ask``: an answer from the knowledge base, citing the pairs it used, written
by the configured generator (local GGUF, Gemini, an OpenAI-compatible server or none)."""

from __future__ import annotations

import json
from typing import Any

import click

from daemon.cli.support import global_options, load, with_errors
from daemon.core.logs import get_logger
from daemon.providers.generators import make_generator
from daemon.rag.ask import ask_configured
from daemon.runtime.search_client import LiveSearcher


@click.command()
@click.argument("question")
@click.option("-k", "k", type=click.IntRange(1, 50), help="Pairs to retrieve (default 4).")
@click.option(
    "--max-distance",
    type=click.FloatRange(0, 2),
    help="Answer only from pairs this close (default [search] max_distance, 0.5).",
)
@click.option(
    "--generator",
    type=click.Choice(["auto", "llama", "gemini", "openai", "none"]),
    help="Who writes the answer (default [rag] generator).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@global_options
@click.pass_context
def ask(
    ctx: click.Context,
    question: str,
    k: int | None,
    max_distance: float | None,
    generator: str | None,
    as_json: bool,
) -> None:
    """Answer QUESTION from the knowledge base, citing the pair ids it used.

    Retrieves the closest pairs; with none within the distance threshold it says it
    does not know, without calling a model. The answer is written by a local GGUF
    model (llama-cpp-python; [rag] gguf_path), Gemini, any OpenAI-compatible server
    ([openai]: Ollama, llama.cpp, vLLM), or none (prints the context). Retrieval goes
    through the running daemon when there is one.

    \b
    Example:
      inboxd ask "How is the RSI calculated?" --root ~/research
      inboxd ask "What does MVRV above 3.5 mean?" --generator none --root ~/research
      INBOXD_OPENAI__MODEL=mixtral inboxd ask "..." --generator openai --root ~/research
    """
    config = load(ctx)

    def run() -> Any:
        writer = make_generator(config, generator)
        searcher = LiveSearcher(config, get_logger())
        try:
            return ask_configured(
                config, question, searcher, writer, k=k, max_distance=max_distance, log=get_logger()
            )
        finally:
            searcher.close()

    answer = with_errors(run)
    click.echo(json.dumps(answer.as_dict(), indent=2) if as_json else answer.render())
