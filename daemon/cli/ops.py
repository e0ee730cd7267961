"""The operator commands: ``doctor`` (check a root) and ``backup`` (copy the DB while
the daemon runs)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from daemon.cli.support import EXIT_ERROR, global_options, load, options, with_errors
from daemon.core.logs import configure_logging


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--skip-model", is_flag=True, help="Do not load the embedding model (saves a few seconds)."
)
@global_options
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, skip_model: bool) -> None:
    """Check the root: folders, permissions, DB integrity, index, providers, model.

    Prints ok or FAIL for each check, with what to fix, and exits 1 if any failed.
    Safe while the daemon runs (read-only); run it as the daemon's user to see what
    the daemon can write.

    \b
    Example:
      inboxd doctor --root ~/research
      sudo -u inboxd /opt/inboxd/venv/bin/inboxd doctor --root /var/lib/inboxd
      inboxd doctor --skip-model --json --root ~/research | jq .ok
    """
    from daemon.ops import doctor as checks

    given = options(ctx)
    # The config is one of the checks, so logging cannot wait for it: warnings only,
    # on stderr, unless --log-level/--log-format say otherwise.
    configure_logging(given.log_format or "console", given.log_level or "warning", sys.stderr)
    found = checks.run_checks(given.root, given.config_path, given.overrides, model=not skip_model)
    click.echo(checks.to_json(found) if as_json else checks.render(found))
    if any(check.failed for check in found):
        sys.exit(EXIT_ERROR)


@click.command()
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@global_options
@click.pass_context
def backup(ctx: click.Context, dest: Path, force: bool) -> None:
    """Copy the DB to DEST (a file, or a folder for a timestamped file) while it runs.

    Uses SQLite's online backup: consistent even while the daemon writes. The index
    is not copied (it is rebuilt from the DB); copy state/archive/ yourself.

    \b
    Example:
      inboxd backup ~/backups/ --root ~/research              # ~/backups/inboxd-<UTC time>.db
      inboxd backup /var/backups/inboxd/inboxd-$(date +%F).db --root /var/lib/inboxd
    """
    from daemon.ops.backup import afterwards, backup_database

    config = load(ctx)
    result = with_errors(lambda: backup_database(config, dest, overwrite=force))
    click.echo(afterwards(config, result))
