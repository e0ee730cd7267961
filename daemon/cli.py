"""The ``inboxd`` command line: parse, build the config, call a plain function, map our
errors to exit codes and operator messages."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, cast

import click
from rich.console import Console
from rich.table import Table

from daemon import __version__, atomic
from daemon import status as status_report
from daemon.config import CONFIG_FILE_NAME, DEFAULT_CONFIG_TOML, Config, load_config
from daemon.errors import AlreadyRunningError, ConfigError, InboxdError
from daemon.logs import configure_logging, get_logger
from daemon.service import Service
from daemon.store import Store

EXIT_ERROR, EXIT_CONFIG, EXIT_RUNNING = 1, 2, 3


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"inboxd: {message}", err=True)
    sys.exit(code)


class _Options:
    def __init__(self, root: Path | None, config: Path | None, overrides: dict[str, Any]):
        self.root, self.config_path, self.overrides = root, config, overrides

    def load(self) -> Config:
        return load_config(self.root, self.config_path, self.overrides)


def _config(ctx: click.Context, *, logs_to_stdout: bool = False) -> Config:
    """The validated config; logs go to stdout only for the daemon (journald), else to
    stderr so that a command's own output (``--json``) stays clean."""
    options: _Options = ctx.obj
    try:
        config = options.load()
        # Only the daemon writes the log file: it holds the root's lock, and rotation is
        # not safe with two processes writing one file.
        configure_logging(
            config.log_format,
            config.log_level,
            sys.stdout if logs_to_stdout else sys.stderr,
            log_file=config.log_path if logs_to_stdout and config.log_file else None,
            log_file_max_bytes=config.log_file_max_bytes,
            log_file_backups=config.log_file_backups,
        )
    except ConfigError as exc:
        _fail(str(exc), EXIT_CONFIG)
    return config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="inboxd")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder holding inbox/, outbox/ and state/ (default: $INBOXD_ROOT or .).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"TOML config file (default: <root>/{CONFIG_FILE_NAME} if present).",
)
@click.option(
    "--log-format",
    type=click.Choice(["json", "console"]),
    help="json: one object a line (journald); console: for people.",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.pass_context
def cli(
    ctx: click.Context,
    root: Path | None,
    config_path: Path | None,
    log_format: str | None,
    log_level: str | None,
) -> None:
    """inboxd: turn what research agents drop into folders into a refined Q&A base.

    \b
    Example:
      inboxd --root ~/research init
      inboxd --root ~/research run --log-format console
    """
    ctx.obj = _Options(root, config_path, {"log_format": log_format, "log_level": log_level})


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create inbox/, outbox/, state/ and a commented config file.

    \b
    Example:
      inboxd --root ~/research init
    """
    config = _config(ctx)
    for folder in (config.inbox_dir, config.outbox_dir, config.state_dir):
        folder.mkdir(parents=True, exist_ok=True)
    target = config.root / CONFIG_FILE_NAME
    if not target.exists():
        atomic.write_text(target, DEFAULT_CONFIG_TOML)
    store = Store(config.db_path)
    store.migrate()
    store.close()
    click.echo(f"initialised {config.root} (config: {target})")


@cli.command()
@click.option("--once", is_flag=True, help="Process what is there now, then exit.")
@click.pass_context
def run(ctx: click.Context, once: bool) -> None:
    """Watch inbox/ and outbox/ and process every file until SIGTERM or SIGINT.

    \b
    Example:
      inboxd --root ~/research run
      inboxd --root ~/research run --once     # for cron or a one-off import
    """
    config = _config(ctx, logs_to_stdout=True)
    options: _Options = ctx.obj
    service = Service(config, reload_config=options.load)
    service.install_signal_handlers()
    try:
        service.start(watch=not once)
        if once:
            service.run_once()
        else:
            service.run()
    except AlreadyRunningError as exc:
        _fail(str(exc), EXIT_RUNNING)
    except InboxdError as exc:
        _fail(str(exc), EXIT_ERROR)
    finally:
        service.stop()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show batches by state, pairs, rejected files, the agent's progress and signals.

    \b
    Example:
      inboxd --root ~/research status
      inboxd --root ~/research status --json | jq .pairs
    """
    report = _with_errors(lambda: status_report.gather(_config(ctx)))
    if as_json:
        click.echo(status_report.to_json(report))
    else:
        status_report.render(report, Console())


@cli.command()
@click.argument("batch_ids", nargs=-1, type=int)
@click.pass_context
def retry(ctx: click.Context, batch_ids: tuple[int, ...]) -> None:
    """Re-queue failed batches now (all of them, or the ids given).

    \b
    Example:
      inboxd --root ~/research retry          # every failed batch
      inboxd --root ~/research retry 12 14
    """
    config = _config(ctx)

    def requeue() -> int:
        store = Store(config.db_path)
        try:
            return store.requeue_parked(time.time(), batch_ids)
        finally:
            store.close()

    count = _with_errors(requeue)
    click.echo(f"re-queued {count} failed batch(es); a running daemon picks them up now")


@cli.command()
@click.argument("query")
@click.option("-k", "k", type=click.IntRange(1, 1000), help="How many results (default 5).")
@click.option(
    "--max-distance",
    type=click.FloatRange(0, 2),
    help="Cosine distance cut-off for dense hits (default 0.5, the seed's).",
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
      inboxd --root ~/research search "how is the simple moving average computed" -k 3
      inboxd --root ~/research search MVRV --mode hybrid --min-quality 80 --json
    """
    config = _config(ctx)
    from daemon.search import Hit, Mode, open_searcher
    from daemon.search_server import ask_daemon

    parameters: dict[str, Any] = {
        "k": k or config.search.default_k,
        "max_distance": config.search.max_distance if max_distance is None else max_distance,
        "indicator": indicator,
        "min_quality": min_quality,
        "mode": cast(Mode, mode),
    }

    def find() -> list[Any]:
        if not config.db_path.exists():
            raise InboxdError(f"no database under {config.root}; run `inboxd run` first")
        # The running daemon has the model loaded: asking it saves this process ~3 s.
        served = ask_daemon(config.state_dir, query, parameters)
        if served is not None:
            return [Hit(**hit) for hit in served]
        searcher = open_searcher(config, get_logger())
        try:
            return searcher.search(query, **parameters)
        finally:
            searcher.store.close()

    hits = _with_errors(find)
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
@click.pass_context
def refine(ctx: click.Context) -> None:
    """Re-run corpus-wide de-duplication from stored vectors and resync the index.

    Run it after changing [dedup] threshold; nothing is embedded again. The daemon does
    the same by itself when ALL_SESSIONS_COMPLETE.txt arrives.

    \b
    Example:
      INBOXD_DEDUP__THRESHOLD=0.9 inboxd --root ~/research refine
    """
    config = _config(ctx)
    service = Service(config)
    try:
        pipeline = service.start(watch=False)
        run = pipeline.ctx.services["refine_corpus"]
        _with_errors(lambda: run(time.time()))
    except AlreadyRunningError as exc:
        _fail(f"{exc}. The running daemon refines on ALL_SESSIONS_COMPLETE.txt.", EXIT_RUNNING)
    finally:
        service.stop()
    click.echo(json.dumps(status_report.gather(config)["refinement"], indent=2))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--skip-model", is_flag=True, help="Do not load the embedding model (saves a few seconds)."
)
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, skip_model: bool) -> None:
    """Check the root: folders, permissions, DB integrity, index, providers, model.

    Prints ok or FAIL for each check, with what to fix, and exits 1 if any failed.
    Safe while the daemon runs (read-only); run it as the daemon's user to see what
    the daemon can write.

    \b
    Example:
      inboxd --root ~/research doctor
      sudo -u inboxd /opt/inboxd/venv/bin/inboxd --root /var/lib/inboxd doctor
      inboxd --root ~/research doctor --skip-model --json | jq .ok
    """
    from daemon import doctor as checks

    options: _Options = ctx.obj
    # The config is one of the checks, so logging cannot wait for it: warnings only,
    # on stderr, unless --log-level/--log-format say otherwise.
    configure_logging(
        options.overrides.get("log_format") or "console",
        options.overrides.get("log_level") or "warning",
        sys.stderr,
    )
    found = checks.run_checks(
        options.root, options.config_path, options.overrides, model=not skip_model
    )
    click.echo(checks.to_json(found) if as_json else checks.render(found))
    if any(check.failed for check in found):
        sys.exit(EXIT_ERROR)


@cli.command()
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@click.pass_context
def backup(ctx: click.Context, dest: Path, force: bool) -> None:
    """Copy the DB to DEST (a file, or a folder for a timestamped file) while it runs.

    Uses SQLite's online backup: consistent even while the daemon writes. The index
    is not copied (it is rebuilt from the DB); copy state/archive/ yourself.

    \b
    Example:
      inboxd --root ~/research backup ~/backups/              # ~/backups/inboxd-<UTC time>.db
      inboxd --root /var/lib/inboxd backup /var/backups/inboxd/inboxd-$(date +%F).db
    """
    from daemon.backup import afterwards, backup_database

    config = _config(ctx)
    result = _with_errors(lambda: backup_database(config, dest, overwrite=force))
    click.echo(afterwards(config, result))


@cli.command()
@click.option("--agent", help="The agent whose inbox gets the files (default: [coverage] agent).")
@click.option(
    "--sessions",
    "session_spec",
    help="Sessions to assign, e.g. 2-44 or 2,5,9-12 (default: every session not delivered).",
)
@click.option("--gaps", is_flag=True, help="Write gap-fill assignments for what is missing.")
@click.option("--force", is_flag=True, help="Replace files a person edited.")
@click.pass_context
def dispatch(
    ctx: click.Context, agent: str | None, session_spec: str | None, gaps: bool, force: bool
) -> None:
    """Write assignments into inbox/<agent>/ and register them as sessions.

    Writes session-NN-assignment.md for each session, MASTER_EXECUTION_PLAN.md and
    SESSION_INDEX.md; with --gaps, follow-up assignments for exactly what the gap
    analysis finds missing, numbered after the last session. A file that changed since
    inboxd wrote it is not overwritten without --force.

    \b
    Example:
      inboxd --root ~/research dispatch --agent droid --sessions 2-44
      inboxd --root ~/research dispatch --gaps
    """
    from daemon import dispatch as work
    from daemon import reports
    from daemon.catalog import load_catalog

    config = _config(ctx)
    who = agent or config.coverage.agent

    def write() -> Any:
        catalog = load_catalog(config.catalog_path)
        store = Store(config.db_path)
        try:
            store.migrate()
            now = time.time()
            if gaps:
                found = reports.gather(store, config, catalog)
                return work.dispatch_gaps(store, config, catalog, who, found, force=force, now=now)
            chosen = work.parse_sessions(session_spec, catalog)
            return work.dispatch_plan(store, config, catalog, who, chosen, force=force, now=now)
        finally:
            store.close()

    result = _with_errors(write)
    click.echo(
        f"{len(result.written)} file(s) written, {len(result.unchanged)} unchanged in"
        f" inbox/{who}/; sessions registered: "
        + (", ".join(map(str, result.sessions)) or "none (nothing missing)")
    )


@cli.command()
@click.argument("which", type=click.Choice(["success", "gaps"]), default="success")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def report(ctx: click.Context, which: str, as_json: bool) -> None:
    """Write and show the success criteria (default) or the gap analysis.

    Both land in state/reports/ as JSON and Markdown; the daemon writes them by itself
    after each corpus run (ALL_SESSIONS_COMPLETE.txt or inboxd refine).

    \b
    Example:
      inboxd --root ~/research report             # success.md: which tier is reached
      inboxd --root ~/research report gaps --json
    """
    from daemon import reports

    config = _config(ctx)

    def build() -> tuple[dict[str, Any], str]:
        if not config.db_path.exists():
            raise InboxdError(f"no database under {config.root}; run `inboxd run` first")
        store = Store(config.db_path, readonly=True)
        try:
            found = reports.gather(store, config)
            if which == "gaps":
                data, _ = reports.write_gaps(config, found)
                return data, (config.reports_dir / f"{reports.GAPS_FILE}.md").read_text()
            data = reports.success_report(store, config, found)
            reports.write_success(config, data)
            return data, reports.render_success(data)
        finally:
            store.close()

    data, markdown = _with_errors(build)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        from rich.markdown import Markdown

        Console().print(Markdown(markdown))


def _with_errors(work: Callable[[], Any]) -> Any:
    try:
        return work()
    except ConfigError as exc:
        _fail(str(exc), EXIT_CONFIG)
    except InboxdError as exc:
        _fail(str(exc), EXIT_ERROR)


# Commands that live in modules of their own register here, one line each.
from daemon.cli_rag import ask, evaluate, export  # noqa: E402

cli.add_command(export)
cli.add_command(evaluate)
cli.add_command(ask)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="inboxd")
