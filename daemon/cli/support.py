"""What every ``inboxd`` command shares: the global options (accepted before or after
the command's name), the validated config with logging set up for where the output
goes, and the mapping of our errors to exit codes and operator messages."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from daemon.core.config import CONFIG_FILE_NAME, Config, load_config
from daemon.core.errors import ConfigError, InboxdError
from daemon.core.logs import configure_logging, current_stream

EXIT_ERROR, EXIT_CONFIG, EXIT_RUNNING = 1, 2, 3

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int) -> NoReturn:
    """Print ``message`` for the operator on stderr and exit with ``code``."""
    click.echo(f"inboxd: {message}", err=True)
    sys.exit(code)


@dataclass
class Options:
    """The global options of one invocation, wherever on the line they were typed."""

    root: Path | None = None
    config_path: Path | None = None
    log_format: str | None = None
    log_level: str | None = None

    @property
    def overrides(self) -> dict[str, Any]:
        """The settings the command line gives, for ``load_config`` (None: not given)."""
        return {"log_format": self.log_format, "log_level": self.log_level}

    def load_config(self) -> Config:
        return load_config(self.root, self.config_path, self.overrides)


def _remember(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """An option callback that stores the value on the invocation's shared Options."""

    def store(ctx: click.Context, _: click.Parameter, value: Any) -> None:
        # Subcommand contexts inherit the group's obj, so before and after the command
        # name write to one object; the value typed last (after the name) wins.
        if value is not None:
            setattr(ctx.ensure_object(Options), field, value)

    return store


_GLOBAL_OPTIONS = (
    click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=Path),
        expose_value=False,
        callback=_remember("root"),
        help="The folder holding inbox/, outbox/ and state/ (default: $INBOXD_ROOT or .).",
    ),
    click.option(
        "--config",
        type=click.Path(dir_okay=False, path_type=Path),
        expose_value=False,
        callback=_remember("config_path"),
        help=f"TOML config file (default: <root>/{CONFIG_FILE_NAME} if present).",
    ),
    click.option(
        "--log-format",
        type=click.Choice(["json", "console"]),
        expose_value=False,
        callback=_remember("log_format"),
        help="Log lines as JSON (journald, scripts) or for people (default: console on a"
        " terminal, else json).",
    ),
    click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"]),
        expose_value=False,
        callback=_remember("log_level"),
        help="Least severe log line shown (default: info; on a terminal, warning for"
        " every command but the daemon).",
    ),
)


def global_options(command: F) -> F:
    """Give a command (or the group) ``--root``, ``--config``, ``--log-format`` and
    ``--log-level``, so they work before or after the command's name."""
    for option in reversed(_GLOBAL_OPTIONS):
        command = option(command)
    return command


def options(ctx: click.Context) -> Options:
    """The invocation's global options."""
    return ctx.ensure_object(Options)


def log_settings(
    config_format: str, config_level: str, given: Options, *, one_shot: bool, terminal: bool
) -> tuple[str, str]:
    """The (format, level) a command logs with.

    Format: what was asked (option, variable, file), else console on a terminal and
    JSON otherwise. Level: for the daemon, or off a terminal, what the config says
    (default info); a one-shot command on a terminal shows only warnings and errors
    unless ``--log-level`` asks, so that a person sees the answer and nothing else.
    """
    log_format = config_format if config_format != "auto" else "console" if terminal else "json"
    if not one_shot or not terminal:
        return log_format, config_level
    return log_format, given.log_level or "warning"


def load(ctx: click.Context, *, on_stdout: bool = False, one_shot: bool = True) -> Config:
    """The validated config, with logging set up.

    ``on_stdout``: ``run`` logs on stdout (journald) and may write the log file (it holds
    the root's lock); every other command logs on stderr so its own output stays clean.
    ``one_shot``: False only for the daemon that keeps serving (``run`` without --once).
    """
    given = options(ctx)
    stream = current_stream("stdout" if on_stdout else "stderr")
    try:
        config = given.load_config()
        log_format, log_level = log_settings(
            config.log_format, config.log_level, given, one_shot=one_shot, terminal=stream.isatty()
        )
        # Only `run` writes the log file: it holds the root's lock, and rotation is not
        # safe with two processes writing one file.
        configure_logging(
            log_format,
            log_level,
            stream,
            log_file=config.log_path if on_stdout and config.log_file else None,
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
