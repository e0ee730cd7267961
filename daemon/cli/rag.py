"""The RAG hand-off commands: ``export`` (files or a Chroma collection) and ``eval``
(retrieval of the refined index against the unrefined baseline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from daemon.cli.progress import TerminalProgress
from daemon.cli.support import EXIT_ERROR, fail, global_options, load, with_errors
from daemon.core.logs import get_logger
from daemon.core.progress import Progress
from daemon.rag.chroma import SyncResult, run_chroma_export
from daemon.rag.evaluation import evaluate as evaluate_retrieval
from daemon.rag.export import ExportResult, export_services
from daemon.runtime.wiring import reading


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
@global_options
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
      inboxd export --root ~/research
      inboxd export --json --root ~/research | jq .pairs
      inboxd export --to chroma ~/rag/chroma --root ~/research
    """
    config = load(ctx)
    if target == "chroma":

        def sync() -> SyncResult:
            with reading(config, get_logger()) as services:
                return run_chroma_export(services, path, collection)

        synced = with_errors(sync)
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

    def run() -> ExportResult:
        with reading(config, get_logger()) as services:
            services.progress = Progress(listeners=bar.listeners)
            return export_services(services)

    with TerminalProgress() as bar:
        result = with_errors(run)
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
@global_options
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
      inboxd eval --root ~/research
      inboxd eval --queries my-queries.jsonl --no-builtin --root ~/research
    """
    config = load(ctx)

    def run() -> tuple[dict[str, Any], dict[str, Path]]:
        with reading(config, get_logger()) as services:
            services.progress = Progress(listeners=bar.listeners)
            return evaluate_retrieval(
                services, queries_path=queries_path, builtin=not no_builtin, limit=limit
            )

    with TerminalProgress() as bar:
        report, paths = with_errors(run)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(report["summary"])
    click.echo("reports: " + ", ".join(str(p) for p in paths.values()))
