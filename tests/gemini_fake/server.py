"""A loopback Gemini Developer API (REST, ``v1beta``) for driving the real google-genai client.

Stdlib only. Start it with ``with FakeGemini() as fake: client = fake.client()``.
Shapes follow what google-genai 3.6.1 sends and parses (see /work/shared/notes/gemini-sdk.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import hashlib
import itertools
import json
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback import LoopbackHTTPServer

from .responder import FakeApiError, Responder, default_responder, malformed_text, status_name

DEFAULT_DIM = 3072
API_KEY_HEADER = "x-goog-api-key"

# Route names, used by fault matching and ``fake.counts``.
ROUTES = (
    "embedContent",
    "batchEmbedContents",
    "generateContent",
    "countTokens",
    "batchGenerateContent",
    "asyncBatchEmbedContent",
    "batches.list",
    "batches.get",
    "batches.cancel",
    "batches.delete",
    "files.upload_start",
    "files.upload_chunk",
    "files.list",
    "files.get",
    "files.delete",
    "files.download",
)

TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED", "PARTIALLY_SUCCEEDED"})
_WITH_OUTPUT = frozenset({"SUCCEEDED", "PARTIALLY_SUCCEEDED"})


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _later(hours: float) -> str:
    t = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _wire_state(state: str) -> str:
    # Gemini's BatchState has no PARTIALLY_SUCCEEDED; send the SDK's own JobState name so that
    # t_job_state passes it through unchanged (a BATCH_STATE_ spelling would warn).
    if state == "PARTIALLY_SUCCEEDED":
        return "JOB_STATE_PARTIALLY_SUCCEEDED"
    return f"BATCH_STATE_{state}"


def _pick(d: Any, *names: str, default: Any = None) -> Any:
    """First present key among camelCase / snake_case spellings."""
    if not isinstance(d, dict):
        return default
    for n in names:
        if n in d:
            return d[n]
    return default


def count_tokens(text: str) -> int:
    """The fake tokenizer: about four characters a token, at least one for non-empty text."""
    return 0 if not text else max(1, math.ceil(len(text) / 4))


def _content_texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, dict):
        return []
    return [p["text"] for p in content.get("parts") or [] if isinstance(p, dict) and "text" in p]


def prompt_text_of(request: dict[str, Any]) -> str:
    """The text of all ``contents`` parts, joined by newlines (system instruction excluded)."""
    contents = request.get("contents") or []
    if isinstance(contents, dict):
        contents = [contents]
    return "\n".join(t for c in contents for t in _content_texts(c))


_EMBED_CACHE: dict[str, list[float]] = {}
_EMBED_LOCK = threading.Lock()


def fake_embedding(text: str, dim: int = DEFAULT_DIM) -> list[float]:
    """The vector the fake returns for ``text``: seeded by SHA-256, so stable across runs.

    The full 3072-d vector is L2-normalised; a smaller ``dim`` is its prefix (MRL-style), which,
    as on the real API, is *not* normalised. Values are rounded to 8 decimals, exactly as sent.
    """
    with _EMBED_LOCK:
        full = _EMBED_CACHE.get(text)
        if full is None:
            rng = random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest(), "big"))
            raw = [rng.gauss(0.0, 1.0) for _ in range(DEFAULT_DIM)]
            norm = math.sqrt(sum(v * v for v in raw)) or 1.0
            full = [round(v / norm, 8) for v in raw]
            if len(_EMBED_CACHE) > 4096:
                _EMBED_CACHE.clear()
            _EMBED_CACHE[text] = full
    return full[:dim]


# --------------------------------------------------------------------------------------------
# Recording and fault injection


@dataclass
class RecordedRequest:
    """One HTTP request as the fake saw it."""

    method: str
    path: str  # without the query string, e.g. "/v1beta/models/m:generateContent"
    query: dict[str, str]
    headers: dict[str, str]  # keys lower-cased; the API key header is kept as sent
    body: Any  # parsed JSON, or None (upload chunks and bodiless requests)
    raw: bytes
    route: str  # one of ROUTES, or "unknown"
    at: float = field(default_factory=time.monotonic)
    fault: str | None = None  # the kind of injected fault applied, if any
    status: int | None = None  # status code sent back (None for a hung request)

    @property
    def api_key(self) -> str | None:
        return self.headers.get(API_KEY_HEADER)


Match = str | Collection[str] | Callable[[RecordedRequest], bool] | None


@dataclass
class Fault:
    """A scripted misbehaviour, applied to the next ``times`` requests that ``match``."""

    kind: str  # "http" | "hang" | "malformed" | "garbage"
    match: Match = None
    times: int | None = 1  # None = every matching request, forever
    status: int = 500
    message: str | None = None
    retry_after: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float | None = None  # hang duration
    mode: str = "not_json"  # malformed: not_json | schema | truncated | fenced | empty | blocked
    text: str | None = None  # malformed: explicit reply text
    hits: int = 0

    def matches(self, req: RecordedRequest) -> bool:
        m = self.match
        if m is None:
            return True
        if callable(m):
            return bool(m(req))
        patterns = [m] if isinstance(m, str) else list(m)
        return any(fnmatch.fnmatchcase(req.route, p) for p in patterns)


@dataclass
class JobPlan:
    """How the next created batch job will behave."""

    final_state: str = "SUCCEEDED"
    pending_polls: int | None = None
    running_polls: int | None = None
    error: dict[str, Any] | None = None


@dataclass
class BatchJob:
    """Server-side state of one batch job."""

    id: str
    kind: str  # "generate" | "embed"
    model: str
    display_name: str
    source: str  # "file" | "inline"
    input_file: str | None
    items: list[dict[str, Any]]  # {"key"?, "request", "metadata"?, "error"?}
    states: list[str]
    create_time: str
    error: dict[str, Any] | None = None
    polls: int = 0
    forced: str | None = None
    state: str = "PENDING"
    update_time: str = ""
    end_time: str | None = None
    output: dict[str, Any] | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"batches/{self.id}"

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass
class StoredFile:
    """One file resource (uploaded, or a batch's results)."""

    id: str
    display_name: str | None
    mime_type: str
    size: int
    data: bytes
    source: str  # "UPLOADED" | "GENERATED"
    create_time: str
    state: str = "ACTIVE"

    @property
    def name(self) -> str:
        return f"files/{self.id}"


@dataclass
class _Upload:
    file: StoredFile
    expected: int
    buf: bytearray = field(default_factory=bytearray)
    done: bool = False


class _Reply(Exception):
    """Raised inside handlers to send a complete response."""

    def __init__(
        self,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json; charset=UTF-8",
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.raw = raw
        self.content_type = content_type


def _error(code: int, message: str, status: str | None = None) -> _Reply:
    return _Reply(code, {"error": FakeApiError(code, message, status).to_json()})


# --------------------------------------------------------------------------------------------


class FakeGemini:
    """A fake Gemini API server on 127.0.0.1 for the real google-genai client.

    Args:
        api_key: the key ``client()`` sends; requests with another key get 400 API_KEY_INVALID.
        api_versions: path versions served; any other (e.g. the SDK 3.x default ``v1``) is a 404.
        responder: ``(prompt_text, schema) -> str`` for generateContent and batch generate lines.
        pending_polls / running_polls: how many ``batches.get`` calls a new job answers with
            PENDING, then RUNNING, before its final state.
        client_timeout_ms: the ``HttpOptions.timeout`` ``client()`` uses by default.
        hang_seconds: default length of a ``hang()`` fault (bounded; stopping the server cuts it).
        max_embed_batch: requests allowed in one ``batchEmbedContents`` call (the real cap is 100).
        max_output_dim: largest ``outputDimensionality`` accepted.
        thoughts_tokens: if > 0, every generate answer reports this many ``thoughtsTokenCount``.
        embed_usage: include ``usageMetadata`` in embedding replies (unverified on the real API).
        embedder: ``(text, task_type, dim) -> list[float]``; defaults to :func:`fake_embedding`.
        shuffle_seed: seed for the (always non-identity) shuffle of batch results.
        known_models: if given, other model ids get 404 NOT_FOUND.
        reject_mime_types: upload MIME types answered with 400 (the "jsonl" trap, #1547).
    """

    def __init__(
        self,
        *,
        api_key: str = "fake-gemini-key",
        api_versions: Iterable[str] = ("v1beta",),
        responder: Responder | None = None,
        pending_polls: int = 1,
        running_polls: int = 1,
        client_timeout_ms: int = 5_000,
        hang_seconds: float | None = None,
        max_embed_batch: int = 100,
        max_output_dim: int = DEFAULT_DIM,
        thoughts_tokens: int = 0,
        embed_usage: bool = False,
        embedder: Callable[[str, str | None, int], list[float]] | None = None,
        shuffle_seed: int = 1234,
        known_models: Iterable[str] | None = None,
        reject_mime_types: Iterable[str] = (),
    ) -> None:
        self.api_key = api_key
        self.api_versions = tuple(api_versions)
        self.api_version = self.api_versions[0]
        self.responder: Responder = responder or default_responder
        self.pending_polls = pending_polls
        self.running_polls = running_polls
        self.client_timeout_ms = client_timeout_ms
        self.hang_seconds = hang_seconds
        self.max_embed_batch = max_embed_batch
        self.max_output_dim = max_output_dim
        self.thoughts_tokens = thoughts_tokens
        self.embed_usage = embed_usage
        self.embedder = embedder
        self.shuffle_seed = shuffle_seed
        self.known_models = (
            {m.removeprefix("models/") for m in known_models} if known_models else None
        )
        self.reject_mime_types = set(reject_mime_types)

        self.requests: list[RecordedRequest] = []
        self.counts: Counter[str] = Counter()
        self.embedded: list[tuple[str, str | None, int]] = []  # (text, task_type, dim)
        self.files: dict[str, StoredFile] = {}
        self.jobs: dict[str, BatchJob] = {}
        self.faults: list[Fault] = []
        self.job_plans: list[JobPlan] = []
        self.key_errors: dict[str, dict[str, Any]] = {}
        self.key_malformed: dict[str, str] = {}
        self.omitted_keys: set[str] = set()

        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ids = itertools.count(1)
        self._uploads: dict[str, _Upload] = {}
        self._server: LoopbackHTTPServer | None = None
        self._clients: list[Any] = []
        self.url = ""

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> FakeGemini:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        server = LoopbackHTTPServer(Handler)
        self._server = server
        self.url = f"http://127.0.0.1:{server.port}"
        self._stop.clear()
        server.start()
        return self

    def stop(self) -> None:
        """Stop serving; hung handlers wake up at once, and no handler thread is left."""
        self._stop.set()
        for c in self._clients:
            c.close()
        self._clients.clear()
        if self._server is not None:
            self._server.close()
            self._server = None

    def __enter__(self) -> FakeGemini:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- clients
    def http_options(self, **overrides: Any) -> Any:
        """``types.HttpOptions`` pointing at this server (``v1beta``, timeout in ms)."""
        from google.genai import types

        opts: dict[str, Any] = {
            "base_url": self.url,
            "api_version": self.api_version,
            "timeout": self.client_timeout_ms,
        }
        opts.update(overrides)
        return types.HttpOptions(**opts)

    def client(self, **http_overrides: Any) -> Any:
        """A real ``google.genai.Client`` for this server. Keyword args override HttpOptions
        fields, e.g. ``timeout=500`` or ``retry_options=types.HttpRetryOptions(...)``."""
        from google import genai

        client = genai.Client(
            api_key=self.api_key, http_options=self.http_options(**http_overrides)
        )
        # genai.Client.__del__ closes its httpx client, so a temporary such as
        # ``fake.client().models.embed_content(...)`` would fail mid-call ("Cannot send a
        # request, as the client has been closed"); keep it alive until stop().
        self._clients.append(client)
        return client

    # ---------------------------------------------------------------- fault injection
    def inject(self, fault: Fault) -> Fault:
        """Queue a fault; the first queued fault matching a request is applied to it."""
        with self._lock:
            self.faults.append(fault)
        return fault

    def fail(
        self,
        status: int,
        *,
        match: Match = None,
        times: int | None = 1,
        message: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """Answer the next matching request(s) with an HTTP error in the google.rpc shape."""
        return self.inject(
            Fault(
                "http",
                match,
                times,
                status=status,
                message=message,
                retry_after=retry_after,
                headers=dict(headers or {}),
            )
        )

    def rate_limit(
        self, *, match: Match = None, times: int | None = 1, retry_after: float = 1
    ) -> Fault:
        """A 429 RESOURCE_EXHAUSTED with ``Retry-After`` and a google.rpc.RetryInfo detail."""
        return self.fail(429, match=match, times=times, retry_after=retry_after)

    def hang(
        self, *, match: Match = None, times: int | None = 1, seconds: float | None = None
    ) -> Fault:
        """Read the request, then send nothing for ``seconds`` and drop the connection."""
        return self.inject(Fault("hang", match, times, seconds=seconds))

    def malformed(
        self,
        mode: str = "not_json",
        *,
        match: Match = "generateContent",
        times: int | None = 1,
        text: str | None = None,
    ) -> Fault:
        """Make the next generate answer broken. Modes: ``not_json``, ``schema`` (parseable but
        wrong types), ``truncated`` (half the JSON, finishReason MAX_TOKENS), ``fenced``
        (```json fences), ``empty``, ``blocked`` (no content, finishReason SAFETY); or ``text``."""
        return self.inject(Fault("malformed", match, times, mode=mode, text=text))

    def garbage(self, *, match: Match = None, times: int | None = 1) -> Fault:
        """A 200 reply whose body is not JSON at all."""
        return self.inject(Fault("garbage", match, times))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def next_job(
        self,
        final_state: str = "SUCCEEDED",
        *,
        pending_polls: int | None = None,
        running_polls: int | None = None,
        error: dict[str, Any] | None = None,
    ) -> JobPlan:
        """Script the next created batch job: its final state (SUCCEEDED, FAILED, CANCELLED,
        EXPIRED, PARTIALLY_SUCCEEDED) and poll counts. FAILED jobs carry ``error``."""
        final_state = final_state.upper().removeprefix("BATCH_STATE_").removeprefix("JOB_STATE_")
        if final_state not in TERMINAL_STATES:
            raise ValueError(f"not a terminal state: {final_state}")
        plan = JobPlan(final_state, pending_polls, running_polls, error)
        with self._lock:
            self.job_plans.append(plan)
        return plan

    def fail_key(self, key: str, code: int = 500, message: str | None = None) -> None:
        """Make one batch line fail: its result line carries ``error`` instead of ``response``."""
        with self._lock:
            self.key_errors[key] = FakeApiError(
                code, message or f"fake failure for {key}"
            ).to_json()

    def malformed_key(self, key: str, mode: str = "not_json") -> None:
        """Make one batch generate line's answer text broken (see ``malformed`` modes)."""
        with self._lock:
            self.key_malformed[key] = mode

    def omit_key(self, key: str) -> None:
        """Leave one key out of the results entirely (the backend has been seen to do so)."""
        with self._lock:
            self.omitted_keys.add(key)

    def set_job_state(self, name: str, state: str) -> None:
        """Force a job into ``state`` now (e.g. EXPIRED while RUNNING)."""
        state = state.upper().removeprefix("BATCH_STATE_").removeprefix("JOB_STATE_")
        with self._lock:
            job = self.jobs[name.removeprefix("batches/")]
            job.forced = state
            self._set_state(job, state)

    # ---------------------------------------------------------------- inspection
    def requests_to(self, route: str) -> list[RecordedRequest]:
        """Recorded requests whose route matches ``route`` (fnmatch pattern)."""
        with self._lock:
            return [r for r in self.requests if fnmatch.fnmatchcase(r.route, route)]

    @property
    def jobs_created(self) -> int:
        return self.counts["batchGenerateContent"] + self.counts["asyncBatchEmbedContent"]

    @property
    def files_uploaded(self) -> int:
        return sum(1 for f in self.files.values() if f.source == "UPLOADED")

    def file_bytes(self, name: str) -> bytes:
        """Content of a stored file (uploaded or generated) by ``files/<id>`` or id."""
        with self._lock:
            return self.files[name.removeprefix("files/")].data

    def embedding_for(
        self, text: str, dim: int = DEFAULT_DIM, task_type: str | None = None
    ) -> list[float]:
        """The vector this server returns for ``text``."""
        if self.embedder is not None:
            return list(self.embedder(text, task_type, dim))
        return fake_embedding(text, dim)

    # ---------------------------------------------------------------- internals
    def _take_fault(self, req: RecordedRequest) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.matches(req):
                    f.hits += 1
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self.faults.remove(f)
                    return f
        return None

    def _new_id(self, prefix: str) -> str:
        n = next(self._ids)
        tail = hashlib.sha1(f"{prefix}{n}{id(self)}".encode()).hexdigest()[:10]  # noqa: S324
        return f"{prefix}{n:04d}{tail}"

    def _check_model(self, model: str) -> None:
        if self.known_models is not None and model.split("/")[-1] not in self.known_models:
            raise _error(
                404,
                f"models/{model.split('/')[-1]} is not found for API version "
                f"{self.api_version}, or is not supported.",
            )

    # --- embeddings
    def _embed_one(self, req: dict[str, Any], model: str) -> tuple[list[float], int]:
        content = _pick(req, "content")
        texts = _content_texts(content)
        if not texts:
            raise FakeApiError(400, "* EmbedContentRequest.content: contents must not be empty")
        text = "\n".join(texts)
        dim = _pick(req, "outputDimensionality", "output_dimensionality", default=DEFAULT_DIM)
        try:
            dim = int(dim)
        except (TypeError, ValueError):
            raise FakeApiError(400, f"Invalid outputDimensionality: {dim!r}") from None
        if not 1 <= dim <= self.max_output_dim:
            raise FakeApiError(
                400, f"outputDimensionality must be between 1 and {self.max_output_dim}."
            )
        task = _pick(req, "taskType", "task_type")
        req_model = _pick(req, "model")
        if req_model and req_model.removeprefix("models/") != model.removeprefix("models/"):
            raise FakeApiError(400, f"Model {req_model} does not match the request URL ({model}).")
        with self._lock:
            self.embedded.append((text, task, dim))
        return self.embedding_for(text, dim, task), count_tokens(text)

    def _batch_embed_contents(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        reqs = body.get("requests")
        if not isinstance(reqs, list) or not reqs:
            raise _error(400, "* BatchEmbedContentsRequest.requests: must not be empty")
        if len(reqs) > self.max_embed_batch:
            raise _error(
                400,
                "* BatchEmbedContentsRequest.requests: at most "
                f"{self.max_embed_batch} requests can be in one batch\n",
            )
        out, tokens = [], 0
        for r in reqs:
            try:
                values, n = self._embed_one(r, model)
            except FakeApiError as e:
                raise _error(e.code, e.message, e.status) from None
            out.append({"values": values})
            tokens += n
        reply: dict[str, Any] = {"embeddings": out}
        if self.embed_usage:
            reply["usageMetadata"] = {"promptTokenCount": tokens, "totalTokenCount": tokens}
        return reply

    def _embed_content(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            values, n = self._embed_one(body, model)
        except FakeApiError as e:
            raise _error(e.code, e.message, e.status) from None
        reply: dict[str, Any] = {"embedding": {"values": values}}
        if self.embed_usage:
            reply["usageMetadata"] = {"promptTokenCount": n, "totalTokenCount": n}
        return reply

    # --- generation
    def _generate(
        self,
        model: str,
        req: dict[str, Any],
        *,
        malformed: str | None = None,
        text_override: str | None = None,
    ) -> dict[str, Any]:
        """A GenerateContentResponse dict for ``req``; raises FakeApiError for a bad request."""
        contents = req.get("contents")
        if not contents:
            raise FakeApiError(400, "* GenerateContentRequest.contents: contents is not specified")
        cfg = _pick(req, "generationConfig", "generation_config", default={}) or {}
        mime = _pick(cfg, "responseMimeType", "response_mime_type")
        schema = _pick(cfg, "responseJsonSchema", "response_json_schema")
        if schema is None:
            schema = _pick(cfg, "responseSchema", "response_schema")
        if schema is not None and mime not in ("application/json", "text/x.enum"):
            raise FakeApiError(
                400,
                "* GenerateContentRequest.generation_config.response_mime_type: "
                "response_schema requires response_mime_type application/json",
            )
        prompt = prompt_text_of(req)
        sys_text = "\n".join(_content_texts(_pick(req, "systemInstruction", "system_instruction")))
        if text_override is not None:
            text = text_override
        else:
            text = self.responder(prompt, schema)
            if malformed:
                text = malformed_text(malformed, schema, text) if malformed != "blocked" else ""
        finish = "STOP"
        if malformed == "truncated":
            finish = "MAX_TOKENS"
        p_tokens = count_tokens(prompt) + count_tokens(sys_text)
        c_tokens = count_tokens(text)
        usage: dict[str, Any] = {
            "promptTokenCount": p_tokens,
            "candidatesTokenCount": c_tokens,
            "totalTokenCount": p_tokens + c_tokens + self.thoughts_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": p_tokens}],
        }
        if self.thoughts_tokens:
            usage["thoughtsTokenCount"] = self.thoughts_tokens
        if malformed == "blocked":
            candidate: dict[str, Any] = {"finishReason": "SAFETY", "index": 0}
            usage.pop("candidatesTokenCount")
            usage["totalTokenCount"] = p_tokens
        else:
            candidate = {
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": finish,
                "index": 0,
            }
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": model.removeprefix("models/"),
            "responseId": hashlib.sha1(  # noqa: S324
                f"{prompt}{time.monotonic_ns()}".encode()
            ).hexdigest()[:22],
        }

    # --- files
    def _file_json(self, f: StoredFile) -> dict[str, Any]:
        v = self.api_version
        out: dict[str, Any] = {
            "name": f.name,
            "mimeType": f.mime_type,
            "sizeBytes": str(f.size),
            "createTime": f.create_time,
            "updateTime": f.create_time,
            "expirationTime": _later(48),
            "sha256Hash": base64.b64encode(hashlib.sha256(f.data).hexdigest().encode()).decode(),
            "uri": f"{self.url}/{v}/{f.name}",
            "state": f.state,
            "source": f.source,
        }
        if f.display_name:
            out["displayName"] = f.display_name
        if f.source == "GENERATED":
            out["downloadUri"] = f"{self.url}/download/{v}/{f.name}:download?alt=media"
        return out

    def _store_generated(self, data: bytes, display_name: str) -> StoredFile:
        f = StoredFile(
            id=self._new_id("batch-"),
            display_name=display_name,
            mime_type="application/jsonl",
            size=len(data),
            data=data,
            source="GENERATED",
            create_time=_now(),
        )
        self.files[f.id] = f
        return f

    # --- batches
    def _plan_states(self, plan: JobPlan) -> list[str]:
        pending = self.pending_polls if plan.pending_polls is None else plan.pending_polls
        running = self.running_polls if plan.running_polls is None else plan.running_polls
        return ["PENDING"] * pending + ["RUNNING"] * running + [plan.final_state]

    def _parse_jsonl(self, data: bytes) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for i, line in enumerate(data.decode("utf-8", "replace").splitlines()):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                items.append(
                    {
                        "key": None,
                        "line": i,
                        "error": FakeApiError(
                            400, f"Line {i + 1} is not valid JSON: {e.msg}"
                        ).to_json(),
                    }
                )
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("request"), dict):
                items.append(
                    {
                        "key": _pick(obj, "key"),
                        "line": i,
                        "error": FakeApiError(
                            400, f"Line {i + 1} has no 'request' object"
                        ).to_json(),
                    }
                )
                continue
            items.append({"key": obj.get("key"), "line": i, "request": obj["request"]})
        return items

    def _create_batch(self, kind: str, model: str, body: dict[str, Any]) -> dict[str, Any]:
        batch = body.get("batch")
        if not isinstance(batch, dict):
            raise _error(400, "* batch: field is required")
        input_cfg = _pick(batch, "inputConfig", "input_config", default={}) or {}
        file_name = _pick(input_cfg, "fileName", "file_name")
        items: list[dict[str, Any]]
        if file_name:
            f = self.files.get(str(file_name).removeprefix("files/"))
            if f is None:
                raise _error(404, f"File {file_name} not found.", "NOT_FOUND")
            items = self._parse_jsonl(f.data)
            source = "file"
        else:
            inline = _pick(input_cfg, "requests", default={}) or {}
            reqs = inline.get("requests") if isinstance(inline, dict) else None
            if not isinstance(reqs, list):
                raise _error(400, "* batch.input_config: either file_name or requests is required")
            items = []
            for i, r in enumerate(reqs):
                meta = _pick(r, "metadata")
                key = meta.get("key") if isinstance(meta, dict) else None
                items.append(
                    {
                        "key": key,
                        "line": i,
                        "request": _pick(r, "request", default={}),
                        "metadata": meta,
                    }
                )
            source = "inline"
        if not items:
            raise _error(400, "* batch.input_config: the batch has no requests")
        with self._lock:
            plan = self.job_plans.pop(0) if self.job_plans else JobPlan()
            now = _now()
            job = BatchJob(
                id=self._new_id("fake"),
                kind=kind,
                model=model,
                display_name=_pick(batch, "displayName", "display_name", default="") or "",
                source=source,
                input_file=f"files/{str(file_name).removeprefix('files/')}" if file_name else None,
                items=items,
                states=self._plan_states(plan),
                create_time=now,
                update_time=now,
                error=plan.error,
            )
            self.jobs[job.id] = job
            return self._job_json(job)

    def _set_state(self, job: BatchJob, state: str) -> None:
        if job.state == state:
            return
        job.state = state
        job.update_time = _now()
        if state in TERMINAL_STATES:
            job.end_time = job.update_time
            if state in _WITH_OUTPUT:
                self._run_job(job)
            elif state == "FAILED" and job.error is None:
                job.error = FakeApiError(
                    500, "Batch job failed (injected by FakeGemini)."
                ).to_json()

    def _advance(self, job: BatchJob) -> None:
        if job.terminal or job.forced:
            return
        job.polls += 1
        self._set_state(job, job.states[min(job.polls - 1, len(job.states) - 1)])

    def _process_item(self, job: BatchJob, item: dict[str, Any]) -> dict[str, Any]:
        key = item.get("key")
        if "error" in item:
            return {"error": item["error"]}
        if key is not None and key in self.key_errors:
            return {"error": self.key_errors[key]}
        try:
            if job.kind == "embed":
                values, n = self._embed_one(item["request"], job.model)
                return {"response": {"embedding": {"values": values}, "tokenCount": str(n)}}
            mode = self.key_malformed.get(key) if key is not None else None
            return {"response": self._generate(job.model, item["request"], malformed=mode)}
        except FakeApiError as e:
            return {"error": e.to_json()}

    def _run_job(self, job: BatchJob) -> None:
        results = []
        for item in job.items:
            key = item.get("key")
            if key is not None and key in self.omitted_keys:
                continue
            res = self._process_item(job, item)
            if job.source == "file":
                line: dict[str, Any] = {} if key is None else {"key": key}
                line.update(res)
            else:
                line = dict(res)
                if item.get("metadata") is not None:
                    line["metadata"] = item["metadata"]
            results.append(line)
        ok = sum(1 for r in results if "response" in r)
        job.stats = {
            "requestCount": len(job.items),
            "successfulRequestCount": ok,
            "failedRequestCount": len(job.items) - ok,
            "pendingRequestCount": 0,
        }
        if not (job.kind == "embed" and job.source == "inline"):
            results = self._shuffled(results, job.id)
        job.results = results
        if job.source == "file":
            data = "".join(json.dumps(r) + "\n" for r in results).encode()
            out = self._store_generated(data, f"{job.display_name or job.id}-results")
            job.output = {"responsesFile": out.name}
        else:
            job.output = {"inlinedResponses": {"inlinedResponses": results}}

    def _shuffled(self, rows: list[dict[str, Any]], salt: str) -> list[dict[str, Any]]:
        rng = random.Random(f"{self.shuffle_seed}:{salt}")
        out = list(rows)
        rng.shuffle(out)
        if len(out) > 1 and out == rows:  # never hand back input order
            out = out[1:] + out[:1]
        return out

    def _job_json(self, job: BatchJob) -> dict[str, Any]:
        type_name = "GenerateContentBatch" if job.kind == "generate" else "EmbedContentBatch"
        prefix = f"type.googleapis.com/google.ai.generativelanguage.{self.api_version}."
        input_cfg: dict[str, Any] = (
            {"fileName": job.input_file} if job.input_file else {"requests": {"requests": []}}
        )
        stats = job.stats or {"requestCount": len(job.items), "pendingRequestCount": len(job.items)}
        meta: dict[str, Any] = {
            "@type": prefix + type_name,
            "model": job.model,
            "displayName": job.display_name,
            "inputConfig": input_cfg,
            "createTime": job.create_time,
            "updateTime": job.update_time,
            "batchStats": {k: str(v) for k, v in stats.items()},
            "state": _wire_state(job.state),
            "name": job.name,
        }
        out: dict[str, Any] = {"name": job.name, "metadata": meta}
        if job.end_time:
            meta["endTime"] = job.end_time
        if job.output is not None:
            meta["output"] = job.output
        if job.terminal:
            out["done"] = True
            if job.output is not None:
                out["response"] = {"@type": prefix + type_name + "Output", **job.output}
            elif job.error is not None and job.state == "FAILED":
                out["error"] = job.error
        return out

    # ---------------------------------------------------------------- dispatch
    _MODEL = r"(?P<model>(?:models|tunedModels)/[^/:]+)"
    _PATTERNS: tuple[tuple[str, str, str], ...] = (
        ("POST", rf"/{{v}}/{_MODEL}:embedContent", "embedContent"),
        ("POST", rf"/{{v}}/{_MODEL}:batchEmbedContents", "batchEmbedContents"),
        ("POST", rf"/{{v}}/{_MODEL}:generateContent", "generateContent"),
        ("POST", rf"/{{v}}/{_MODEL}:countTokens", "countTokens"),
        ("POST", rf"/{{v}}/{_MODEL}:batchGenerateContent", "batchGenerateContent"),
        ("POST", rf"/{{v}}/{_MODEL}:asyncBatchEmbedContent", "asyncBatchEmbedContent"),
        ("GET", r"/{v}/batches", "batches.list"),
        ("GET", r"/{v}/batches/(?P<id>[^/:]+)", "batches.get"),
        ("POST", r"/{v}/batches/(?P<id>[^/:]+):cancel", "batches.cancel"),
        ("DELETE", r"/{v}/batches/(?P<id>[^/:]+)", "batches.delete"),
        ("POST", r"/upload/{v}/files", "files.upload"),
        ("GET", r"/{v}/files", "files.list"),
        ("GET", r"/(?:download/)?{v}/files/(?P<id>[^/:]+):download", "files.download"),
        ("GET", r"/{v}/files/(?P<id>[^/:]+)", "files.get"),
        ("DELETE", r"/{v}/files/(?P<id>[^/:]+)", "files.delete"),
    )

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[str, dict[str, str], str | None]:
        """(route name, path params, version) for a request; route 'unknown' if none."""
        for m, pattern, name in self._PATTERNS:
            if m != method:
                continue
            rx = re.fullmatch(pattern.replace("{v}", r"(?P<v>[^/]+)"), path)
            if rx is None:
                continue
            params = {k: v for k, v in rx.groupdict().items() if v is not None}
            if name == "files.upload":
                is_chunk = "upload_id" in query or (
                    headers.get("x-goog-upload-command", "").strip() != "start"
                )
                name = "files.upload_chunk" if is_chunk else "files.upload_start"
            return name, params, params.pop("v", None)
        return "unknown", {}, None

    def _handle(self, req: RecordedRequest, params: dict[str, str], version: str | None) -> Any:
        route = req.route
        if route == "unknown":
            raise _error(404, f"Method not found: {req.method} {req.path}", "NOT_FOUND")
        if version not in self.api_versions:
            raise _error(
                404,
                f"API version {version!r} is not served by this fake "
                f"(serving {', '.join(self.api_versions)}).",
                "NOT_FOUND",
            )
        if route != "files.upload_chunk" and req.api_key != self.api_key:
            raise _Reply(
                400,
                {
                    "error": {
                        "code": 400,
                        "message": "API key not valid. Please pass a valid API key.",
                        "status": "INVALID_ARGUMENT",
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                "reason": "API_KEY_INVALID",
                                "domain": "googleapis.com",
                            }
                        ],
                    }
                },
            )
        body = req.body if isinstance(req.body, dict) else {}
        if "model" in params:
            self._check_model(params["model"])
        with self._lock:
            return self._dispatch(route, params, body, req)

    def _dispatch(
        self, route: str, params: dict[str, str], body: dict[str, Any], req: RecordedRequest
    ) -> Any:
        model = params.get("model", "")
        if route == "batchEmbedContents":
            return self._batch_embed_contents(model, body)
        if route == "embedContent":
            return self._embed_content(model, body)
        if route == "generateContent":
            try:
                return self._generate(model, body)
            except FakeApiError as e:
                raise _error(e.code, e.message, e.status) from None
        if route == "countTokens":
            reqs = body.get("generateContentRequest") or body
            n = count_tokens(prompt_text_of(reqs))
            return {
                "totalTokens": n,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}],
            }
        if route == "batchGenerateContent":
            return self._create_batch("generate", model, body)
        if route == "asyncBatchEmbedContent":
            return self._create_batch("embed", model, body)
        if route.startswith("batches."):
            return self._batches(route, params, req)
        return self._files(route, params, body, req)

    def _batches(self, route: str, params: dict[str, str], req: RecordedRequest) -> Any:
        if route == "batches.list":
            size = int(req.query.get("pageSize", "50") or 50)
            start = int(req.query.get("pageToken", "0") or 0)
            jobs = sorted(self.jobs.values(), key=lambda j: j.create_time, reverse=True)
            page = jobs[start : start + size]
            reply: dict[str, Any] = {"operations": [self._job_json(j) for j in page]}
            if start + size < len(jobs):
                reply["nextPageToken"] = str(start + size)
            return reply
        job = self.jobs.get(params["id"])
        if job is None:
            raise _error(404, f"Batch batches/{params['id']} not found.", "NOT_FOUND")
        if route == "batches.get":
            self._advance(job)
            return self._job_json(job)
        if route == "batches.cancel":
            if job.terminal:
                raise _error(
                    400, f"Batch {job.name} is already in state {job.state}.", "FAILED_PRECONDITION"
                )
            job.forced = "CANCELLED"
            self._set_state(job, "CANCELLED")
            return {}
        # batches.delete
        del self.jobs[job.id]
        return {}

    def _files(
        self, route: str, params: dict[str, str], body: dict[str, Any], req: RecordedRequest
    ) -> Any:
        if route == "files.upload_start":
            return self._upload_start(body, req)
        if route == "files.upload_chunk":
            return self._upload_chunk(req)
        if route == "files.list":
            size = int(req.query.get("pageSize", "10") or 10)
            start = int(req.query.get("pageToken", "0") or 0)
            files = sorted(self.files.values(), key=lambda f: f.create_time, reverse=True)
            reply: dict[str, Any] = {
                "files": [self._file_json(f) for f in files[start : start + size]]
            }
            if start + size < len(files):
                reply["nextPageToken"] = str(start + size)
            return reply
        f = self.files.get(params["id"])
        if f is None:
            raise _error(
                403,
                f"You do not have permission to access the File {params['id']} "
                "or it may not exist.",
                "PERMISSION_DENIED",
            )
        if route == "files.get":
            return self._file_json(f)
        if route == "files.delete":
            del self.files[f.id]
            return {}
        # files.download
        if f.source != "GENERATED":
            raise _error(400, "Only generated files can be downloaded.", "FAILED_PRECONDITION")
        raise _Reply(200, raw=f.data, content_type="application/octet-stream")

    def _upload_start(self, body: dict[str, Any], req: RecordedRequest) -> Any:
        if req.headers.get("x-goog-upload-protocol") != "resumable":
            raise _error(400, "Only the resumable upload protocol is supported by the fake.")
        meta = _pick(body, "file", default={}) or {}
        mime = req.headers.get("x-goog-upload-header-content-type") or _pick(
            meta, "mimeType", "mime_type"
        )
        if not mime:
            raise _error(400, "Upload has no MIME type.")
        if mime in self.reject_mime_types:
            raise _error(400, f"Unsupported MIME type: {mime}")
        size = int(
            req.headers.get("x-goog-upload-header-content-length")
            or _pick(meta, "sizeBytes", "size_bytes", default=0)
        )
        name = _pick(meta, "name")
        fid = str(name).removeprefix("files/") if name else self._new_id("up")
        if fid in self.files:
            raise _error(409, f"File files/{fid} already exists.", "ALREADY_EXISTS")
        f = StoredFile(
            fid,
            _pick(meta, "displayName", "display_name"),
            mime,
            size,
            b"",
            "UPLOADED",
            _now(),
            state="PROCESSING",
        )
        upload_id = self._new_id("u")
        self._uploads[upload_id] = _Upload(f, size)
        url = (
            f"{self.url}/upload/{self.api_version}/files?upload_id={upload_id}"
            "&upload_protocol=resumable"
        )
        raise _Reply(
            200,
            raw=b"",
            headers={
                "x-goog-upload-url": url,
                "x-goog-upload-status": "active",
                "x-goog-upload-control-url": url,
                "x-goog-upload-chunk-granularity": "8388608",
            },
        )

    def _upload_chunk(self, req: RecordedRequest) -> Any:
        up = self._uploads.get(req.query.get("upload_id", ""))
        if up is None or up.done:
            raise _Reply(
                404,
                {"error": FakeApiError(404, "Upload session not found.").to_json()},
                headers={"x-goog-upload-status": "final"},
            )
        command = [c.strip() for c in req.headers.get("x-goog-upload-command", "").split(",")]
        offset = int(req.headers.get("x-goog-upload-offset", "0") or 0)
        if offset != len(up.buf):
            raise _Reply(
                400,
                {
                    "error": FakeApiError(
                        400, f"Bad offset {offset}, expected {len(up.buf)}."
                    ).to_json()
                },
                headers={"x-goog-upload-status": "active"},
            )
        if "upload" in command:
            up.buf.extend(req.raw)
        if "finalize" not in command:
            raise _Reply(200, raw=b"", headers={"x-goog-upload-status": "active"})
        up.done = True
        if len(up.buf) != up.expected:
            raise _Reply(
                400,
                {
                    "error": FakeApiError(
                        400, f"Upload size {len(up.buf)} does not match declared {up.expected}."
                    ).to_json()
                },
                headers={"x-goog-upload-status": "final"},
            )
        f = up.file
        f.data, f.size, f.state = bytes(up.buf), len(up.buf), "ACTIVE"
        self.files[f.id] = f
        raise _Reply(200, {"file": self._file_json(f)}, headers={"x-goog-upload-status": "final"})


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGemini
    protocol_version = "HTTP/1.1"
    server_version = "FakeGemini/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        body: Any = None
        route, params, version = fake._route(self.command, parts.path, query, headers)
        if raw and route != "files.upload_chunk":
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        req = RecordedRequest(self.command, parts.path, query, headers, body, raw, route)
        with fake._lock:
            fake.requests.append(req)
            fake.counts[route] += 1
        fault = fake._take_fault(req)
        if fault is not None:
            req.fault = fault.kind
        try:
            if fault is not None and fault.kind == "hang":
                secs = fault.seconds
                if secs is None:
                    secs = fake.hang_seconds
                if secs is None:
                    secs = fake.client_timeout_ms / 1000 + 1.0
                fake._stop.wait(min(float(secs), 60.0))
                self.close_connection = True
                return
            if fault is not None and fault.kind == "http":
                raise self._fault_reply(fault, route)
            if fault is not None and fault.kind == "garbage":
                raise _Reply(200, raw=b"<html>502 Bad Gateway</html>", content_type="text/html")
            if fault is not None and fault.kind == "malformed" and route == "generateContent":
                b = req.body if isinstance(req.body, dict) else {}
                try:
                    reply = fake._generate(
                        params.get("model", ""), b, malformed=fault.mode, text_override=fault.text
                    )
                except FakeApiError as e:
                    raise _error(e.code, e.message, e.status) from None
                raise _Reply(200, reply)
            raise _Reply(200, fake._handle(req, params, version))
        except _Reply as r:
            req.status = r.status
            self._send(r)
        except Exception as e:  # noqa: BLE001 - a fake bug must surface as a 500, not a hang
            req.status = 500
            self._send(_error(500, f"FakeGemini internal error: {type(e).__name__}: {e}"))

    @staticmethod
    def _fault_reply(fault: Fault, route: str) -> _Reply:
        code = fault.status
        err: dict[str, Any] = FakeApiError(
            code, fault.message or f"Injected {code} ({status_name(code)}) by FakeGemini."
        ).to_json()
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers.setdefault("Retry-After", str(math.ceil(fault.retry_after)))
            err["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{fault.retry_after:g}s",
                }
            ]
        if route == "files.upload_chunk":
            # Without this header the SDK silently re-posts the chunk 3 times with 1+2+4 s sleeps.
            headers.setdefault("x-goog-upload-status", "final")
        return _Reply(code, {"error": err}, headers=headers)

    def _send(self, r: _Reply) -> None:
        data = (
            r.raw if r.raw is not None else (b"" if r.body is None else json.dumps(r.body).encode())
        )
        try:
            self.send_response(r.status)
            self.send_header("Content-Type", r.content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in r.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_DELETE = do_PATCH = _serve
