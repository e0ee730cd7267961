"""The RAG hand-off commands: ``export``, ``eval`` and ``ask``, registered on the
``inboxd`` group in ``daemon.cli``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from daemon.cli_support import EXIT_ERROR, fail, load, with_errors


@click.command()
@click.argument("path", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--to",
    "target",
    type=click.Choice(["files", "chroma"]),
    default="files",
    show_default=True,
    help="files: the export folder; chroma: a Chroma collection at PATH.",
)
@click.option("--collection", help="Chroma collection name (default [rag] chroma_collection).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def export(
    ctx: click.Context, path: Path | None, target: str, collection: str | None, as_json: bool
) -> None:
    """Export the refined knowledge base for a RAG system (works while the daemon runs).

    --to files (default) writes knowledge_base.jsonl, the hnswlib index with its label
    map and metadata, manifest.json (counts, quality, sha256) and a README with a
    loading example into a new folder, then points state/export at it atomically. The
    daemon does the same after every corpus refinement run ([rag] auto_export).

    --to chroma makes the Chroma collection at PATH (default [rag] chroma_path, else
    state/chroma) equal the active corpus: inboxd's own vectors, ids = pair ids, cosine
    distance; changed pairs upserted, inactive ones deleted. Needs
    `pip install 'inboxd[chroma]'`; [rag] chroma_sync = true keeps it in sync.

    \b
    Example:
      inboxd --root ~/research export
      inboxd --root ~/research export --json | jq .pairs
      inboxd --root ~/research export --to chroma ~/rag/chroma
    """
    from daemon.logs import get_logger

    config = load(ctx)
    if target == "chroma":
        from daemon.sinks.chroma import run_chroma_export

        synced = with_errors(lambda: run_chroma_export(config, path, collection))
        if as_json:
            click.echo(json.dumps(synced.as_dict(), indent=2))
        else:
            click.echo(
                f"chroma collection {synced.collection!r} at {synced.path}: {synced.pairs} pairs"
                f" ({synced.upserted} upserted, {synced.deleted} deleted)"
            )
        return
    if path is not None or collection is not None:
        fail("PATH and --collection are for --to chroma; files go to [rag] export_dir", EXIT_ERROR)
    from daemon.export import run_export

    result = with_errors(lambda: run_export(config, get_logger()))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "path": str(result.path),
                    "version": str(result.version),
                    "pairs": result.pairs,
                    "duration_ms": result.duration_ms,
                },
                indent=2,
            )
        )
    else:
        click.echo(f"exported {result.pairs} pairs to {result.path} -> {result.version.name}")


@click.command(name="eval")
@click.option(
    "--queries",
    "queries_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help='JSON Lines of {"query": ..., "indicator": ... and/or "pair_ids": [...]}.',
)
@click.option("--no-builtin", is_flag=True, help="Skip the queries generated from the catalog.")
@click.option("--limit", type=click.IntRange(1), help="Evaluate at most this many queries.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@click.pass_context
def evaluate(
    ctx: click.Context,
    queries_path: Path | None,
    no_builtin: bool,
    limit: int | None,
    as_json: bool,
) -> None:
    """Compare retrieval of the refined index with the unrefined baseline.

    Same queries on both sides, from stored vectors (only the queries are embedded):
    hit@1, hit@5, MRR@10, nDCG@10 at indicator level, the 0.5 distance threshold, and
    near-duplicates in the top 5. Writes state/reports/eval.json, eval.md and
    eval_distances.png.

    \b
    Example:
      inboxd --root ~/research eval
      inboxd --root ~/research eval --queries my-queries.jsonl --no-builtin
    """
    from daemon.evaluation import evaluate as run
    from daemon.logs import get_logger

    config = load(ctx)
    report, paths = with_errors(
        lambda: run(
            config, get_logger(), queries_path=queries_path, builtin=not no_builtin, limit=limit
        )
    )
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(report["summary"])
    click.echo("reports: " + ", ".join(str(p) for p in paths.values()))


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
    type=click.Choice(["auto", "llama", "gemini", "none"]),
    help="Who writes the answer (default [rag] generator).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
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
    model (llama-cpp-python; [rag] gguf_path), Gemini, or none (prints the context).

    \b
    Example:
      inboxd --root ~/research ask "How is the RSI calculated?"
      inboxd --root ~/research ask "What does MVRV above 3.5 mean?" --generator none
    """
    from daemon.ask import ask as answer_question
    from daemon.errors import InboxdError
    from daemon.generators import make_generator
    from daemon.logs import get_logger
    from daemon.search import open_searcher

    config = load(ctx)

    def run() -> Any:
        if not config.db_path.exists():
            raise InboxdError(f"no database under {config.root}; run `inboxd run` first")
        writer = make_generator(config, generator)
        searcher = open_searcher(config, get_logger())
        try:
            return answer_question(
                question,
                searcher,
                writer,
                k=k or config.rag.ask_k,
                max_distance=config.search.max_distance if max_distance is None else max_distance,
                min_quality=config.rag.min_quality,
                context_tokens=config.rag.context_size - config.rag.max_tokens,
                log=get_logger(),
            )
        finally:
            searcher.store.close()

    answer = with_errors(run)
    click.echo(json.dumps(answer.as_dict(), indent=2) if as_json else answer.render())
