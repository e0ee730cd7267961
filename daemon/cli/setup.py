"""``inboxd init``: make a root (folders, a commented config, a migrated DB) and the local
model's ONNX export."""

from __future__ import annotations

import click

from daemon.cli.support import global_options, load, with_errors
from daemon.core import atomic
from daemon.core.config import CONFIG_FILE_NAME
from daemon.core.config_template import render_config_template
from daemon.providers.embedders.local import prepare_local_model
from daemon.store import Store


@click.command()
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
        atomic.write_text(target, render_config_template())
    store = Store(config.db_path)
    store.migrate()
    store.close()
    click.echo(f"initialised {config.root} (config: {target})")
    model = with_errors(lambda: prepare_local_model(config))
    if model is not None:
        click.echo(f"local embedding model: {model} (verified)")
