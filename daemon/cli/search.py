"""``inboxd search``: the pairs that answer a query, through the running daemon when
there is one, else in this process. The cold path a person waits on: this module
imports only what a search needs."""

from __future__ import annotations

import json
from typing import Any, cast

import click
from rich.console import Console
from rich.table import Table

from daemon.cli.support import global_options, load, with_errors
from daemon.core.logs import get_logger
from daemon.runtime.search_client import LiveSearcher
from daemon.search.searcher import Mode, default_max_distance


@click.command()
@click.argument("query")
@click.option("-k", "k", type=click.IntRange(1, 1000), help="How many results (default 5).")
@click.option(
    "--max-distance",
    type=click.FloatRange(0, 2),
    help="Cosine distance cut-off: dense mode drops hits past it (default [search]"
    " max_distance, 0.5); hybrid cuts nothing unless given, then spares BM25 matches.",
)
@click.option("--indicator", help="Only pairs of this indicator (id, name or alias).")
@click.option("--min-quality", type=click.FloatRange(0, 100), help="Only pairs scoring this.")
@click.option(
    "--mode",
    type=click.Choice(["dense", "lexical", "hybrid"]),
    default="hybrid",
    show_default=True,
    help="dense: embeddings; lexical: BM25; hybrid: both fused.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@global_options
@click.pass_context
def search(
    ctx: click.Context,
    query: str,
    k: int | None,
    max_distance: float | None,
    indicator: str | None,
    min_quality: float | None,
    mode: str,
    as_json: bool,
) -> None:
    """Find the pairs that answer QUERY (works while the daemon runs).

    \b
    Example:
      inboxd search "how is the simple moving average computed" -k 3 --root ~/research
      inboxd search MVRV --mode hybrid --min-quality 80 --json --root ~/research
    """
    config = load(ctx)

    def find() -> list[Any]:
        # The running daemon has the model loaded: asking it saves this process ~3 s.
        searcher = LiveSearcher(config, get_logger())
        try:
            return searcher.search(
                query,
                k=k or config.search.default_k,
                max_distance=(
                    default_max_distance(cast(Mode, mode), config.search.max_distance)
                    if max_distance is None
                    else max_distance
                ),
                indicator=indicator,
                min_quality=min_quality,
                mode=cast(Mode, mode),
            )
        finally:
            searcher.close()

    hits = with_errors(find)
    if as_json:
        click.echo(json.dumps([hit.as_dict() for hit in hits], indent=2))
        return
    table = Table(title=f"{len(hits)} result(s) for {query!r}")
    for column in ("id", "distance", "indicator", "quality", "question / answer"):
        table.add_column(column)
    for hit in hits:
        distance = "" if hit.distance is None else f"{hit.distance:.3f}"
        quality = "" if hit.quality is None else f"{hit.quality:.0f} {hit.tier}"
        table.add_row(
            str(hit.pair_id),
            distance,
            hit.indicator or "",
            quality,
            f"[bold]{hit.question}[/]\n{hit.answer[:300]}",
        )
    Console().print(table)
