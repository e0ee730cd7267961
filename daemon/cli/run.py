"""The commands that process a root: ``run`` (the daemon, or one pass with --once),
``refine`` (corpus-wide de-duplication again) and ``retry`` (re-queue failed batches)."""

from __future__ import annotations

import json
import sys
import time

import click

from daemon.cli.progress import TerminalProgress, describe_run
from daemon.cli.support import (
    EXIT_ERROR,
    EXIT_RUNNING,
    fail,
    global_options,
    load,
    options,
    with_errors,
)
from daemon.core.errors import AlreadyRunningError, InboxdError
from daemon.core.progress import Update
from daemon.ops import status as status_report
from daemon.runtime.process import exit_now, reexec
from daemon.runtime.service import Service
from daemon.stages.corpus_run import run_corpus
from daemon.store import Store


@click.command()
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


@click.command()
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


@click.command()
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
