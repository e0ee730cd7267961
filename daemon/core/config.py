"""The one configuration object: built once from TOML, ``INBOXD_*`` variables and CLI
options, validated by pydantic, frozen, and passed down. No other module reads the
environment.

Precedence, highest first: command-line options, environment (``INBOXD_WATCH__SETTLE_SECONDS``
for ``[watch] settle_seconds``), the TOML file (``--config``, else ``<root>/inboxd.toml``),
defaults.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from daemon.core.config_sections import (
    CoverageConfig,
    DatabaseConfig,
    DedupConfig,
    EmbeddingsConfig,
    GeminiConfig,
    LimitsConfig,
    OpenAIConfig,
    RagConfig,
    RetryConfig,
    ScoringConfig,
    SearchConfig,
    WatchConfig,
    WorkerConfig,
)
from daemon.core.errors import ConfigError

CONFIG_FILE_NAME = "inboxd.toml"

# Which TOML file the Config being built reads (set only inside load_config).
_TOML_FILE: ContextVar[Path | None] = ContextVar("_TOML_FILE", default=None)


class Config(BaseSettings):
    """Every setting of one inboxd root."""

    model_config = SettingsConfigDict(
        env_prefix="INBOXD_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    root: Path = Field(default_factory=Path.cwd)
    # auto: console on a terminal, JSON otherwise (journald, pipes, files).
    log_format: Literal["auto", "json", "console"] = Field(
        "auto",
        description='"json" (one object a line, for journald), "console", or "auto": console '
        "on a terminal, else json",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info",
        description="a command other than `run` shows warnings only on a terminal, unless "
        "--log-level asks for more",
    )
    # The daemon (`inboxd run`) also appends its JSON lines to state/logs/inboxd.log,
    # rotated by size, for hosts without journald or to keep months of history.
    log_file: bool = Field(
        False, description="`run` also appends its JSON log lines to state/logs/inboxd.log"
    )
    log_file_max_bytes: int = Field(
        10 * 1024 * 1024,
        ge=64 * 1024,
        description="... rotated at this size (inboxd.log.1, .2, ...)",
    )
    log_file_backups: int = Field(
        5, ge=1, le=100, description="... keeping this many rotated files"
    )
    catalog_path: Path | None = Field(
        None,
        examples=["my-catalog.toml"],
        description="replace the shipped 227-indicator catalog",
    )
    watch: WatchConfig = WatchConfig()
    worker: WorkerConfig = WorkerConfig()
    limits: LimitsConfig = LimitsConfig()
    retry: RetryConfig = RetryConfig()
    database: DatabaseConfig = DatabaseConfig()
    embeddings: EmbeddingsConfig = EmbeddingsConfig()
    dedup: DedupConfig = DedupConfig()
    scoring: ScoringConfig = ScoringConfig()
    search: SearchConfig = SearchConfig()
    rag: RagConfig = RagConfig()
    gemini: GeminiConfig = GeminiConfig()
    openai: OpenAIConfig = OpenAIConfig()
    coverage: CoverageConfig = CoverageConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _TOML_FILE.get()
        if toml_file is None:
            return (init_settings, env_settings)
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file))

    # Paths derived from the root: one place names the layout.
    @property
    def inbox_dir(self) -> Path:
        return self.root / "inbox"

    @property
    def outbox_dir(self) -> Path:
        return self.root / "outbox"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "inboxd.db"

    @property
    def archive_dir(self) -> Path:
        return self.state_dir / "archive"

    @property
    def index_dir(self) -> Path:
        return self.state_dir / "index"

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "logs" / "inboxd.log"

    @property
    def lock_path(self) -> Path:
        return self.state_dir / "inboxd.lock"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from exc


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        env = "INBOXD_" + "__".join(str(part) for part in error["loc"]).upper()
        got = f" (got {error['input']!r})" if error["type"] != "missing" else ""
        lines.append(f"  {key} [env {env}]: {error['msg']}{got}")
    return "\n".join(lines)


def resolve_root(root: Path | None = None) -> Path:
    """The root a command works on: ``--root``, else ``$INBOXD_ROOT``, else the current
    folder; absolute. (``inboxd doctor`` needs it even when the config does not load.)"""
    return (root or Path(os.environ.get("INBOXD_ROOT") or ".")).expanduser().resolve()


def load_config(
    root: Path | None = None,
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the validated config; a bad value raises ConfigError naming the key."""
    root = resolve_root(root)
    path = config_path or root / CONFIG_FILE_NAME
    toml_file: Path | None = None
    if config_path is not None or path.exists():
        _read_toml(path)  # a syntax error is reported with the file's name
        toml_file = path
    values: dict[str, Any] = {k: v for k, v in (overrides or {}).items() if v is not None}
    values["root"] = root
    token = _TOML_FILE.set(toml_file)
    try:
        return Config(**values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(toml_file or "defaults"))) from exc
    finally:
        _TOML_FILE.reset(token)
