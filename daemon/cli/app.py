"""The ``inboxd`` command line: parse, build the config, call a plain function, map our
errors to exit codes and operator messages."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, cast

import click
from rich.console import Console
from rich.table import Table

from daemon import __version__
from daemon.cli.mcp import mcp
from daemon.cli.ops import backup, doctor
from daemon.cli.plan import dispatch, report
from daemon.cli.progress import TerminalProgress, describe_run
from daemon.cli.rag import ask, evaluate, export
from daemon.cli.support import (
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_RUNNING,
    fail,
    global_options,
    load,
    options,
    with_errors,
)
from daemon.core import atomic
from daemon.core.config import CONFIG_FILE_NAME, DEFAULT_CONFIG_TOML
from daemon.core.errors import AlreadyRunningError, InboxdError
from daemon.core.logs import get_logger
from daemon.core.progress import Update
from daemon.ops import status as status_report
from daemon.providers.embedders.local import prepare_local_model
from daemon.runtime.search_client import LiveSearcher
from daemon.runtime.service import Service, exit_now, reexec
from daemon.search.searcher import Mode, default_max_distance
from daemon.stages.corpus_run import run_corpus
from daemon.store import Store

__all__ = ["EXIT_CONFIG", "EXIT_ERROR", "EXIT_RUNNING", "cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="inboxd")
@global_options
def cli() -> None:
    """inboxd: turn what research agents drop into folders into a refined Q&A base.

    The options below work before or after the command's name.

    \b
    Example:
      inboxd init --root ~/research
      inboxd run --root ~/research
      inboxd status --root ~/research
    """


@cli.command()
@global_options
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create inbox/, outbox/, state/, a commented config file, and the local model's
    ONNX export if no verified one is installed (a one-time step that needs torch).

    \b
    Example:
      inboxd init --root ~/research
    """
    config = load(ctx)
    for folder in (config.inbox_dir, config.outbox_dir, config.state_dir):
        folder.mkdir(parents=True, exist_ok=True)
    target = config.root / CONFIG_FILE_NAME
    if not target.exists():
        atomic.write_text(target, DEFAULT_CONFIG_TOML)
    store = Store(config.db_path)
    store.migrate()
    store.close()
    click.echo(f"initialised {config.root} (config: {target})")
    model = with_errors(lambda: prepare_local_model(config))
    if model is not None:
        click.echo(f"local embedding model: {model} (verified)")


@cli.command()
@click.option("--once", is_flag=True, help="Process what is there now, then exit.")
@global_options
@click.pass_context
def run(ctx: click.Context, once: bool) -> None:
    """Watch inbox/ and outbox/ and process every file until SIGTERM or SIGINT.

    Logs go to stdout (JSON for journald; console on a terminal). With --once on a
    terminal: progress bars, then one line saying what was done.

    \b
    Example:
      inboxd run --root ~/research
      inboxd run --once --root ~/research     # for cron or a one-off import
    """
    config = load(ctx, on_stdout=True, one_shot=once)
    started = time.time()
    with TerminalProgress(enabled=once and sys.stderr.isatty()) as bar:

        def follow(update: Update) -> None:
            if service.worker is not None:
                totals = service.worker.totals
                bar.show("files", "files", totals.batches_done, totals.batches)
                bar.show("pairs", "pairs embedded", totals.pairs_embedded, totals.pairs)
            # The run's batches are counted above; the task row counts its own units.
            own = update.total if update.unit != "batches" else None
            bar.show("task", update.task, update.done if own else 0, own)

        service = Service(
            config,
            reload_config=options(ctx).load_config,
            progress_listeners=[follow] if bar.enabled else [],
        )
        service.install_signal_handlers()
        summary = None
        try:
            service.start(watch=not once)
            if once:
                service.run_once()
                summary = describe_run(service.run_counts(started))
            else:
                service.run()
        except AlreadyRunningError as exc:
            fail(str(exc), EXIT_RUNNING)
        except InboxdError as exc:
            fail(str(exc), EXIT_ERROR)
        finally:
            service.stop()
    if summary is not None and sys.stdout.isatty():
        click.echo(summary)  # off a terminal, stdout carries the JSON log lines only
    if service.reexec_requested:
        reexec()
    if service.worker_abandoned:
        exit_now(0)


@cli.command()
@click.option("--sessions", "all_sessions", is_flag=True, help="A row for every session.")
@click.option("--json", "as_json", is_flag=True, help="Everything, machine-readable.")
@global_options
@click.pass_context
def status(ctx: click.Context, all_sessions: bool, as_json: bool) -> None:
    """Show the headline (pairs, coverage, quality, tier, what needs you), then sessions.

    Sessions are folded (done 1, 3-5; missing 2, 6-44) with a row for each partial
    one; --sessions shows a row for every session. Safe while the daemon runs: it
    also shows what the daemon is working on.

    \b
    Example:
      inboxd status --root ~/research
      inboxd status --root ~/research --sessions
      inboxd status --root ~/research --json | jq .headline
    """
    report = with_errors(lambda: status_report.gather(load(ctx)))
    if as_json:
        click.echo(status_report.to_json(report))
    else:
        status_report.render(report, Console(), all_sessions=all_sessions)


@cli.command()
@click.argument("batch_ids", nargs=-1, type=int)
@global_options
@click.pass_context
def retry(ctx: click.Context, batch_ids: tuple[int, ...]) -> None:
    """Re-queue failed batches now (all of them, or the ids given).

    \b
    Example:
      inboxd retry --root ~/research          # every failed batch
      inboxd retry 12 14 --root ~/research
    """
    config = load(ctx)

    def requeue() -> int:
        store = Store(config.db_path)
        try:
            return store.requeue_parked(time.time(), batch_ids)
        finally:
            store.close()

    count = with_errors(requeue)
    click.echo(f"re-queued {count} failed batch(es); a running daemon picks them up now")


@cli.command()
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


@cli.command()
@global_options
@click.pass_context
def refine(ctx: click.Context) -> None:
    """Re-run corpus-wide de-duplication from stored vectors and resync the index.

    Run it after changing [dedup] threshold; nothing is embedded again. The daemon does
    the same by itself when ALL_SESSIONS_COMPLETE.txt arrives.

    \b
    Example:
      INBOXD_DEDUP__THRESHOLD=0.9 inboxd refine --root ~/research
    """
    config = load(ctx)
    with TerminalProgress() as bar:
        service = Service(config, progress_listeners=bar.listeners)
        try:
            service.start(watch=False)
            with_errors(lambda: run_corpus(service.worker_services(), time.time()))
        except AlreadyRunningError as exc:
            fail(f"{exc}. The running daemon refines on ALL_SESSIONS_COMPLETE.txt.", EXIT_RUNNING)
        finally:
            service.stop()
    click.echo(json.dumps(status_report.gather(config)["refinement"], indent=2))


# Commands that live in modules of their own, one module per concern.
for command in (dispatch, report, doctor, backup, export, evaluate, ask, mcp):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="inboxd")
