"""The real google-genai client against the loopback FakeGemini server."""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from gemini_fake import API_KEY_HEADER, FakeGemini, fake_embedding
from google.genai import _common, errors, types
from pydantic import BaseModel, Field, ValidationError

JUDGE = "gemini-2.5-flash"
EMBED = "gemini-embedding-001"


class Score(BaseModel):
    score: int = Field(ge=1, le=5)
    reason: str


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(client_timeout_ms=5_000) as server:
        yield server


def _jsonl_requests(keys: list[str]) -> bytes:
    lines = [
        {
            "key": k,
            "request": {
                "contents": [{"role": "user", "parts": [{"text": f"Grade answer {k}"}]}],
                "systemInstruction": {"parts": [{"text": "You are a grader."}]},
                "generationConfig": {
                    "responseMimeType": "application/json",
                    "responseJsonSchema": Score.model_json_schema(),
                    "temperature": 0,
                },
            },
        }
        for k in keys
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _upload_jsonl(client: Any, data: bytes) -> types.File:
    return client.files.upload(
        file=io.BytesIO(data),
        config=types.UploadFileConfig(mime_type="application/jsonl", display_name="judge-in"),
    )


def _poll(client: Any, name: str, limit: int = 10) -> list[types.BatchJob]:
    seen = []
    for _ in range(limit):
        job = client.batches.get(name=name)
        seen.append(job)
        if job.state is not None and job.state.name in {
            "JOB_STATE_SUCCEEDED",
            "JOB_STATE_FAILED",
            "JOB_STATE_CANCELLED",
            "JOB_STATE_EXPIRED",
            "JOB_STATE_PARTIALLY_SUCCEEDED",
        }:
            return seen
    raise AssertionError(f"job {name} never finished: {[j.state for j in seen]}")


def _created_job(client: Any, n: int = 2) -> types.BatchJob:
    src = [
        {"contents": [{"role": "user", "parts": [{"text": f"q{i}"}]}], "metadata": {"key": f"k{i}"}}
        for i in range(n)
    ]
    return client.batches.create(model=JUDGE, src=src, config={"display_name": "inline"})


def test_embed_content_several_texts_with_output_dimensionality(fake: FakeGemini) -> None:
    """embed_content returns one deterministic 768-d vector per text and records the task type."""
    client = fake.client()
    texts = ["How do I reset the cache?", "Use --clear.", "How do I reset the cache?"]
    resp = client.models.embed_content(
        model=EMBED,
        contents=texts,
        config=types.EmbedContentConfig(task_type="RETRIEVAL_DOCUMENT", output_dimensionality=768),
    )
    vectors = [e.values for e in resp.embeddings]
    assert [len(v) for v in vectors] == [768, 768, 768]
    assert vectors[0] == vectors[2] != vectors[1]
    assert (
        vectors[1] == fake_embedding("Use --clear.", 768) == fake.embedding_for("Use --clear.", 768)
    )
    assert fake.embedded == [(t, "RETRIEVAL_DOCUMENT", 768) for t in texts]
    (req,) = fake.requests_to("batchEmbedContents")
    assert req.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert req.body["requests"][0]["outputDimensionality"] == 768
    full = client.models.embed_content(model=EMBED, contents="x").embeddings[0].values
    assert len(full) == 3072
    assert math.isclose(math.fsum(v * v for v in full), 1.0, rel_tol=1e-5)


def test_embed_more_than_100_texts_is_rejected(fake: FakeGemini) -> None:
    """Like the real API, a batchEmbedContents call with over 100 requests is a 400."""
    with pytest.raises(errors.ClientError) as info:
        fake.client().models.embed_content(model=EMBED, contents=[f"t{i}" for i in range(101)])
    assert info.value.code == 400
    assert "at most 100 requests" in info.value.message


def test_generate_content_with_pydantic_schema_is_parsed(fake: FakeGemini) -> None:
    """generate_content with a pydantic response_schema yields response.parsed and usage."""
    resp = fake.client().models.generate_content(
        model=JUDGE,
        contents="Rate this Q&A pair",
        config=types.GenerateContentConfig(
            response_mime_type="application/json",
            response_schema=Score,
            system_instruction="You are a grader.",
            temperature=0,
        ),
    )
    assert isinstance(resp.parsed, Score)
    assert 1 <= resp.parsed.score <= 5
    usage = resp.usage_metadata
    assert usage.prompt_token_count > 0
    assert usage.candidates_token_count > 0
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    (req,) = fake.requests_to("generateContent")
    cfg = req.body["generationConfig"]
    assert cfg["responseMimeType"] == "application/json"
    assert cfg["responseSchema"]["type"] == "OBJECT"


def test_custom_responder_sees_prompt_and_json_schema() -> None:
    """A pluggable responder receives the prompt text and the responseJsonSchema."""
    seen: list[tuple[str, Any]] = []

    def responder(prompt: str, schema: Any) -> str:
        seen.append((prompt, schema))
        return json.dumps({"score": 2, "reason": "too vague"})

    with FakeGemini(responder=responder) as fake:
        resp = fake.client().models.generate_content(
            model=JUDGE,
            contents="Is this answer complete?",
            config=types.GenerateContentConfig(
                response_mime_type="application/json",
                response_json_schema=Score.model_json_schema(),
            ),
        )
    assert Score.model_validate_json(resp.text) == Score(score=2, reason="too vague")
    assert seen == [("Is this answer complete?", Score.model_json_schema())]


@pytest.mark.parametrize("mode", ["not_json", "schema", "truncated"])
def test_malformed_answer_leaves_parsed_none(fake: FakeGemini, mode: str) -> None:
    """A malformed judge answer reaches the caller as text, with response.parsed None."""
    fake.malformed(mode)
    resp = fake.client().models.generate_content(
        model=JUDGE,
        contents="grade",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=Score
        ),
    )
    assert resp.parsed is None
    with pytest.raises(ValidationError):
        Score.model_validate_json(resp.text)
    expected = "MAX_TOKENS" if mode == "truncated" else "STOP"
    assert resp.candidates[0].finish_reason.name == expected


def test_file_batch_round_trip_matched_by_key(fake: FakeGemini) -> None:
    """Upload JSONL, create a batch, poll to SUCCEEDED, download results and match them by key."""
    client = fake.client()
    keys = [f"qa-{i:03d}" for i in range(6)]
    fake.fail_key("qa-004", code=400, message="bad request line")
    fake.malformed_key("qa-002", mode="schema")
    fake.omit_key("qa-005")
    uploaded = _upload_jsonl(client, _jsonl_requests(keys))
    assert uploaded.name.startswith("files/")
    assert uploaded.mime_type == "application/jsonl"
    assert fake.file_bytes(uploaded.name) == _jsonl_requests(keys)

    job = client.batches.create(model=JUDGE, src=uploaded.name, config={"display_name": "judge-1"})
    assert job.name.startswith("batches/")
    assert job.state.name == "JOB_STATE_PENDING"
    assert fake.jobs_created == 1
    states = [j.state.name for j in _poll(client, job.name)]
    assert states == ["JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"]

    done = client.batches.get(name=job.name)
    assert done.done and done.display_name == "judge-1"
    raw = client.files.download(file=done.dest.file_name)
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    assert [line["key"] for line in lines] != keys  # shuffled: order means nothing
    by_key = {line["key"]: line for line in lines}
    assert sorted(by_key) == keys[:5]  # qa-005 went missing: treat as failed
    assert by_key["qa-004"]["error"]["code"] == 400
    bad = types.GenerateContentResponse.model_validate(by_key["qa-002"]["response"])
    with pytest.raises(ValidationError):
        Score.model_validate_json(bad.text)
    for key in ("qa-000", "qa-001", "qa-003"):
        resp = types.GenerateContentResponse.model_validate(by_key[key]["response"])
        assert 1 <= Score.model_validate_json(resp.text).score <= 5
        assert resp.usage_metadata.prompt_token_count > 0

    start = fake.requests_to("files.upload_start")[0]
    chunk = fake.requests_to("files.upload_chunk")[0]
    assert start.path == "/upload/v1beta/files"
    assert start.headers["x-goog-upload-header-content-type"] == "application/jsonl"
    assert start.api_key == fake.api_key
    assert API_KEY_HEADER not in chunk.headers  # the key never travels with the bytes
    assert fake.requests_to("batchGenerateContent")[0].body == {
        "batch": {"displayName": "judge-1", "inputConfig": {"fileName": uploaded.name}}
    }


def test_inline_batch_returns_metadata_keys(fake: FakeGemini) -> None:
    """An inline batch's inlined_responses carry each request's metadata key, shuffled."""
    client = fake.client()
    job = _created_job(client, n=3)
    final = _poll(client, job.name)[-1]
    keys = [r.metadata["key"] for r in final.dest.inlined_responses]
    assert sorted(keys) == ["k0", "k1", "k2"]
    assert keys != ["k0", "k1", "k2"]
    assert all(
        r.response.usage_metadata.total_token_count > 0 for r in final.dest.inlined_responses
    )


def test_embedding_batch_from_file(fake: FakeGemini) -> None:
    """create_embeddings from a JSONL file yields one vector per key in the results file."""
    client = fake.client()
    lines = [
        {
            "key": f"e{i}",
            "request": {
                "content": {"parts": [{"text": f"text {i}"}]},
                "task_type": "RETRIEVAL_DOCUMENT",
                "output_dimensionality": 256,
            },
        }
        for i in range(3)
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = _upload_jsonl(client, data)
    with pytest.warns(_common.ExperimentalWarning):
        job = client.batches.create_embeddings(model=EMBED, src={"file_name": uploaded.name})
    final = _poll(client, job.name)[-1]
    out = [json.loads(x) for x in client.files.download(file=final.dest.file_name).splitlines()]
    got = {line["key"]: line["response"]["embedding"]["values"] for line in out}
    assert got == {f"e{i}": fake_embedding(f"text {i}", 256) for i in range(3)}
    assert fake.jobs_created == 1


def test_batches_list_pages_and_delete(fake: FakeGemini) -> None:
    """batches.list pages through every job, newest first; delete removes one."""
    client = fake.client()
    names = [_created_job(client).name for _ in range(3)]
    listed = [j.name for j in client.batches.list(config={"page_size": 2})]
    assert listed == names[::-1]
    assert fake.requests_to("batches.list")[0].query == {"pageSize": "2"}
    client.batches.delete(name=names[0])
    assert [j.name for j in client.batches.list()] == names[:0:-1]
    with pytest.raises(errors.ClientError) as info:
        client.batches.get(name=names[0])
    assert info.value.code == 404


def test_batches_cancel(fake: FakeGemini) -> None:
    """batches.cancel moves a pending job to CANCELLED, which the SDK counts as done."""
    client = fake.client()
    job = _created_job(client)
    assert client.batches.cancel(name=job.name) is None
    got = client.batches.get(name=job.name)
    assert got.state.name == "JOB_STATE_CANCELLED"
    assert got.done
    assert got.dest is None


def test_rate_limit_surfaces_as_client_error_429(fake: FakeGemini) -> None:
    """A 429 with Retry-After raises ClientError(code=429) and carries the RetryInfo detail."""
    fake.rate_limit(match="batchEmbedContents", retry_after=7)
    with pytest.raises(errors.ClientError) as info:
        fake.client().models.embed_content(model=EMBED, contents=["a"])
    err = info.value
    assert err.code == 429
    assert err.status == "RESOURCE_EXHAUSTED"
    assert err.response.headers["retry-after"] == "7"
    assert err.details["error"]["details"][0]["retryDelay"] == "7s"


@pytest.mark.parametrize(("status", "name"), [(500, "INTERNAL"), (503, "UNAVAILABLE")])
def test_5xx_surfaces_as_server_error(fake: FakeGemini, status: int, name: str) -> None:
    """A 500 or 503 raises ServerError with the code and google.rpc status."""
    fake.fail(status, match="generateContent")
    with pytest.raises(errors.ServerError) as info:
        fake.client().models.generate_content(model=JUDGE, contents="x")
    assert (info.value.code, info.value.status) == (status, name)


def test_retry_options_ride_out_injected_faults(fake: FakeGemini) -> None:
    """With HttpRetryOptions the SDK retries 429, 503 and 500 and then succeeds."""
    for status in (429, 503, 500):
        fake.fail(status, match="generateContent")
    client = fake.client(
        retry_options=types.HttpRetryOptions(
            attempts=4, initial_delay=0.01, max_delay=0.02, jitter=0
        )
    )
    assert client.models.generate_content(model=JUDGE, contents="x").text
    assert [r.status for r in fake.requests_to("generateContent")] == [429, 503, 500, 200]


def test_hung_connection_times_out_within_client_timeout(fake: FakeGemini) -> None:
    """A hung request raises the transport timeout after about the client timeout."""
    fake.hang(match="generateContent", seconds=3)
    client = fake.client(timeout=300)
    start = time.monotonic()
    with pytest.raises(httpx2.TimeoutException):
        client.models.generate_content(model=JUDGE, contents="x")
    assert time.monotonic() - start < 1.5
    assert fake.requests_to("generateContent")[0].fault == "hang"


@pytest.mark.parametrize("state", ["EXPIRED", "FAILED", "CANCELLED"])
def test_scripted_job_end_states_are_reported(fake: FakeGemini, state: str) -> None:
    """A job scripted to end EXPIRED, FAILED or CANCELLED is reported so, with no results."""
    fake.next_job(state, pending_polls=0, running_polls=1)
    client = fake.client()
    job = _created_job(client)
    states = [j.state.name for j in _poll(client, job.name)]
    assert states == ["JOB_STATE_RUNNING", f"JOB_STATE_{state}"]
    final = client.batches.get(name=job.name)
    assert final.done and final.dest is None and final.error is None  # SDK drops `error`
    if state == "FAILED":
        raw = client._api_client.request("get", job.name, {}).body
        assert json.loads(raw)["error"]["code"] == 500


def test_partially_succeeded_is_not_done_for_the_sdk(fake: FakeGemini) -> None:
    """PARTIALLY_SUCCEEDED carries results but BatchJob.done is False, as the notes warn."""
    fake.next_job("PARTIALLY_SUCCEEDED", pending_polls=0, running_polls=0)
    fake.fail_key("k1")
    client = fake.client()
    final = _poll(client, _created_job(client).name)[-1]
    assert final.state.name == "JOB_STATE_PARTIALLY_SUCCEEDED"
    assert not final.done
    errs = {r.metadata["key"]: r.error for r in final.dest.inlined_responses}
    assert errs["k0"] is None and errs["k1"].code == 500


def test_request_log_api_key_and_version_pin(fake: FakeGemini) -> None:
    """The key travels only as x-goog-api-key; a wrong key or an unpinned v1 client is refused."""
    fake.client().models.count_tokens(model=JUDGE, contents="hello there")
    (req,) = fake.requests
    assert req.headers[API_KEY_HEADER] == fake.api_key
    assert fake.api_key not in req.path and not req.query
    from google import genai

    wrong = genai.Client(api_key="nope", http_options=fake.http_options())
    with pytest.raises(errors.ClientError) as info:
        wrong.models.count_tokens(model=JUDGE, contents="x")
    assert info.value.code == 400
    with pytest.raises(errors.ClientError) as info:
        fake.client(api_version="v1").models.count_tokens(model=JUDGE, contents="x")
    assert info.value.code == 404


def test_inline_embedding_batch(fake: FakeGemini) -> None:
    """An inline create_embeddings job returns inlined_embed_content_responses in input order."""
    client = fake.client()
    src = {"inlined_requests": {"contents": ["a", "b"], "config": {"output_dimensionality": 8}}}
    with pytest.warns(_common.ExperimentalWarning):
        job = client.batches.create_embeddings(model=EMBED, src=src)
    final = _poll(client, job.name)[-1]
    got = [r.response.embedding.values for r in final.dest.inlined_embed_content_responses]
    assert got == [fake_embedding("a", 8), fake_embedding("b", 8)]


def test_non_json_body_is_not_an_api_error(fake: FakeGemini) -> None:
    """A 200 with a non-JSON body (a proxy page) raises json.JSONDecodeError, not APIError."""
    fake.garbage(match="generateContent")
    with pytest.raises(json.JSONDecodeError):
        fake.client().models.generate_content(model=JUDGE, contents="x")


def test_upload_chunk_failure_is_raised_at_once(fake: FakeGemini) -> None:
    """A 503 on the upload's data request raises ServerError without the SDK's silent re-posts."""
    fake.fail(503, match="files.upload_chunk")
    client = fake.client()
    with pytest.raises(errors.ServerError):
        _upload_jsonl(client, b"{}\n")
    assert len(fake.requests_to("files.upload_chunk")) == 1
    assert fake.files_uploaded == 0
