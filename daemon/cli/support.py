"""What every ``inboxd`` command shares: the global options, the validated config with
logging set up, and the mapping of our errors to exit codes and operator messages."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from daemon.core.config import Config, load_config
from daemon.core.errors import ConfigError, InboxdError
from daemon.core.logs import configure_logging

EXIT_ERROR, EXIT_CONFIG, EXIT_RUNNING = 1, 2, 3


def fail(message: str, code: int) -> NoReturn:
    """Print ``message`` for the operator on stderr and exit with ``code``."""
    click.echo(f"inboxd: {message}", err=True)
    sys.exit(code)


class Options:
    """The global options, kept on the click context for each command."""

    def __init__(self, root: Path | None, config: Path | None, overrides: dict[str, Any]):
        self.root, self.config_path, self.overrides = root, config, overrides

    def load_config(self) -> Config:
        return load_config(self.root, self.config_path, self.overrides)


def load(ctx: click.Context, *, logs_to_stdout: bool = False) -> Config:
    """The validated config; logs go to stdout only for the daemon (journald), else to
    stderr so that a command's own output (``--json``) stays clean."""
    options: Options = ctx.obj
    try:
        config = options.load_config()
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
        fail(str(exc), EXIT_CONFIG)
    return config


def with_errors(work: Callable[[], Any]) -> Any:
    """Run ``work``; our errors become an operator message and an exit code."""
    try:
        return work()
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    except InboxdError as exc:
        fail(str(exc), EXIT_ERROR)
