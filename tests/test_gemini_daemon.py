"""A real ``inboxd run`` process judging through the fake Gemini's Batch API: killed
after submitting, restarted, it resumes the same job and never submits twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Daemon, assert_consistent, drop, encode_qa, qa_pairs, query
from gemini_fake import FakeGemini


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    # Jobs stay PENDING until the test moves them on.
    with FakeGemini(pending_polls=100_000) as server:
        yield server


def _env(fake: FakeGemini) -> dict[str, str]:
    return {
        "INBOXD_SCORING__PROVIDER": "gemini",
        "INBOXD_EMBEDDINGS__PROVIDER": "gemini",
        "INBOXD_GEMINI__BASE_URL": fake.url,
        "INBOXD_GEMINI__POLL_SECONDS": "0.1",
        "INBOXD_GEMINI__POLL_MAX_SECONDS": "0.2",
        "GEMINI_API_KEY": fake.api_key,
    }


def test_daemon_killed_after_submission_resumes_the_same_job(
    root: Path, make_daemon: Callable[..., Daemon], fake: FakeGemini
) -> None:
    """With Gemini embeddings and judge, batches flow to indexed without waiting on the
    judge; the completion signal sends one job; after SIGKILL and a restart the daemon
    polls that job, applies its results, and the fake has seen exactly one create. The
    key is in no log line and no DB byte."""
    daemon = make_daemon(root, **_env(fake)).start()
    path = "outbox/droid/rsi_qa_pairs.json"
    drop(root / path, encode_qa(qa_pairs("rsi", 5)))
    daemon.wait_done([path])
    daemon.wait_until(
        lambda: query(root, "SELECT state FROM batches") == [("indexed",)], what="indexed"
    )
    drop(root / "outbox/droid/ALL_SESSIONS_COMPLETE.txt", b"done\n")
    submitted = daemon.wait_for("job.submitted")
    # Only the kept pairs are judged: a duplicate is not paid for.
    (kept,) = query(
        root, "SELECT count(*) FROM pairs WHERE id NOT IN (SELECT pair_id FROM duplicates)"
    )[0]
    assert submitted["requests"] == kept >= 1
    daemon.kill()
    assert fake.jobs_created == 1

    daemon.start()
    daemon.wait_for("job.polled", job=submitted["job"])
    fake.set_job_state(submitted["job"], "SUCCEEDED")
    completed = daemon.wait_for("job.completed", job=submitted["job"])
    assert completed["done"] == kept
    assert fake.jobs_created == 1
    assert query(root, "SELECT name, state FROM gemini_jobs") == [(submitted["job"], "succeeded")]
    assert query(root, "SELECT count(*) FROM scores WHERE scorer LIKE 'gemini-judge/%'") == [
        (kept,)
    ]
    models = query(root, "SELECT DISTINCT model, dim FROM embeddings")
    assert models == [("gemini/gemini-embedding-001@768", 768)]
    stages = {row[0] for row in query(root, "SELECT DISTINCT stage FROM gemini_calls")}
    assert stages == {"embed", "judge"}
    assert daemon.alive
    daemon.terminate()
    assert_consistent(root)
    assert all(fake.api_key not in str(line) for line in daemon.all_lines())
    for file in (root / "state").rglob("*"):
        if file.is_file():
            assert fake.api_key.encode() not in file.read_bytes(), file
