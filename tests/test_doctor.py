"""``inboxd doctor`` on real roots: a healthy one passes (exit 0), and each way a root
breaks (a missing folder, a state/ the daemon cannot write, a damaged DB, a stale index,
a config naming an unknown or unavailable provider) is a FAIL that says what to fix."""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import sqlite3
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import process
from conftest import encode_qa, qa_pairs, run_cli

from daemon.core.config import CONFIG_FILE_NAME, Config, load_config
from daemon.core.config_template import render_config_template
from daemon.ops.doctor import Check, Outcome, check_state_writable, run_checks
from daemon.refine.index import META_FILE

NOBODY = 65534


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root as `init` and a finished `run --once` leave it: 3 files of 10 pairs, the
    pairs that are not near duplicates of each other indexed."""
    base = tmp_path_factory.mktemp("healthy") / "root"
    for name in ("inbox", "outbox", "state"):
        (base / name).mkdir(parents=True)
    (base / CONFIG_FILE_NAME).write_text(render_config_template())
    for n in range(3):
        target = base / "outbox" / "quant" / f"ind{n}_qa_pairs.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(encode_qa(qa_pairs(f"indicator{n}", 10)))
    config = load_config(base, overrides={"watch": {"settle_seconds": 0.0}})
    process(config)
    return base


@pytest.fixture
def root(healthy: Path, tmp_path: Path) -> Path:
    """A private copy of the healthy root, for a test to break."""
    copy = tmp_path / "root"
    shutil.copytree(healthy, copy)
    return copy


def checks_of(root: Path) -> dict[str, Check]:
    """Doctor's checks by name, run in this process (the model check is left out)."""
    return {check.name: check for check in run_checks(root, model=False)}


def outcomes(root: Path) -> dict[str, str]:
    return {name: check.outcome.value for name, check in checks_of(root).items()}


def indexed(root: Path) -> int:
    """How many pairs the saved index holds, by its metadata."""
    return int(json.loads((root / "state" / "index" / META_FILE).read_text())["count"])


def failed(checks: dict[str, Check]) -> set[str]:
    return {name for name, check in checks.items() if check.outcome is Outcome.FAIL}


def test_healthy_root_passes_every_check_and_exits_0(root: Path) -> None:
    """`inboxd doctor` on a healthy root prints ok for every check, model included, and exits 0."""
    result = run_cli(root, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    names = ["config", "catalog", "folders", "state", "database", "index", "providers", "model"]
    assert [line.split()[:2] for line in lines[:-1]] == [["ok", name] for name in names]
    assert lines[-1] == "all checks passed"
    assert f"{indexed(root)} pairs, in step with the DB" in result.stdout
    assert "loads offline" in result.stdout


def test_json_report_lists_every_check_with_its_outcome(root: Path) -> None:
    """`doctor --json` is machine-readable: ok overall, and one entry per check."""
    result = run_cli(root, "doctor", "--json", "--skip-model")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert {c["name"]: c["outcome"] for c in report["checks"]}["model"] == "skip"
    assert all(c["outcome"] == "ok" for c in report["checks"] if c["name"] != "model")


def test_missing_folder_fails_folders_with_init_as_the_fix(root: Path) -> None:
    """A root without outbox/ fails the folders check, naming it, and says to run init."""
    shutil.rmtree(root / "outbox")
    checks = checks_of(root)
    assert failed(checks) == {"folders"}
    assert "outbox/ is missing" in checks["folders"].detail
    assert checks["folders"].fix is not None and "init" in checks["folders"].fix


def test_state_that_is_not_a_folder_fails_folders_state_and_database(root: Path) -> None:
    """A regular file where state/ should be: nothing can be written, there is no DB."""
    shutil.rmtree(root / "state")
    (root / "state").write_text("not a folder\n")
    checks = checks_of(root)
    assert failed(checks) == {"folders", "state", "database"}
    assert "state/ is not a folder" in checks["folders"].detail
    assert "is not a folder" in checks["state"].detail
    assert checks["index"].outcome is Outcome.SKIP


@pytest.fixture
def shared_root(healthy: Path) -> Iterator[Path]:
    """A copy of the healthy root in a folder another user can reach (tmp_path is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="inboxd-doctor-"))
    try:
        base.chmod(0o755)
        copy = base / "root"
        shutil.copytree(healthy, copy)
        yield copy
    finally:
        shutil.rmtree(base)


def state_check_as_nobody(config: Config) -> Check:
    """The state check run in a forked child that has dropped root for user nobody.

    A fork, not a new process: the child needs no access to this venv (under /root here),
    only to the root being checked; it runs nothing but the check and ``os._exit``s.
    """
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python >= 3.12 warns about fork() in a threaded process; the child below only
        # makes system calls and never touches a lock another thread could hold.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            check = check_state_writable(config)
            os.write(write_end, json.dumps([check.outcome.value, check.detail, check.fix]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    ready, _, _ = select.select([read_end], [], [], 30)
    data = os.read(read_end, 65536) if ready else b""
    os.close(read_end)
    if not data:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert data and os.waitstatus_to_exitcode(status) == 0, "the child check did not report"
    outcome, detail, fix = json.loads(data)
    return Check("state", Outcome(outcome), detail, fix)


def test_state_the_daemons_user_cannot_write_fails_state_with_chown_as_the_fix(
    shared_root: Path,
) -> None:
    """state/ that the user running doctor cannot write (as for the daemon's user after a
    restore done as root) fails the state check with a chown fix."""
    config = load_config(shared_root)
    if os.geteuid() == 0:
        # root writes through any mode bits: check as an unprivileged user instead,
        # exactly the systemd setup (User=inboxd) with the files left owned by root.
        for path in [shared_root, *shared_root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        check = state_check_as_nobody(config)
    else:
        (shared_root / "state").chmod(0o555)
        try:
            check = check_state_writable(config)
        finally:
            (shared_root / "state").chmod(0o755)
    assert check.outcome is Outcome.FAIL
    assert "cannot write" in check.detail and "Permission denied" in check.detail
    assert check.fix is not None and "chown -R inboxd:inboxd" in check.fix


def test_garbage_over_the_db_fails_database_and_exits_1_with_restore_as_the_fix(
    root: Path,
) -> None:
    """A DB file overwritten with random bytes fails the database check ("not a
    database"), the index check is skipped, and the CLI exits 1 naming the fix."""
    db = root / "state" / "inboxd.db"
    db.write_bytes(random.Random(7).randbytes(db.stat().st_size))
    checks = checks_of(root)
    assert failed(checks) == {"database"}
    assert "not a database" in checks["database"].detail
    assert checks["index"].outcome is Outcome.SKIP

    result = run_cli(root, "doctor", "--skip-model")
    assert result.returncode == 1
    assert "FAIL  database" in result.stdout
    assert "fix: stop the daemon, move the damaged file aside" in result.stdout
    assert result.stdout.splitlines()[-1] == "1 check(s) failed"


def test_damaged_table_page_fails_the_integrity_check(root: Path) -> None:
    """One page of the pairs table overwritten: the file still opens, but
    PRAGMA integrity_check reports it and the database check fails."""
    db = root / "state" / "inboxd.db"
    with sqlite3.connect(db) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (page,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'pairs'").fetchone()
    conn.close()
    with db.open("r+b") as handle:
        handle.seek((page - 1) * page_size)
        handle.write(random.Random(8).randbytes(page_size))
    checks = checks_of(root)
    assert failed(checks) == {"database"}
    assert "damaged" in checks["database"].detail


def test_pairs_removed_from_the_index_metadata_make_the_index_stale(root: Path) -> None:
    """Index metadata that counts fewer pairs than the DB says to index fails the
    index check, with the numbers, and says the daemon rebuilds it."""
    meta_path = root / "state" / "index" / META_FILE
    meta = json.loads(meta_path.read_text())
    count = meta["count"]
    meta["count"] -= 1
    meta_path.write_text(json.dumps(meta))
    checks = checks_of(root)
    assert failed(checks) == {"index"}
    assert f"holds {count - 1} pairs, the DB has {count} to index" in checks["index"].detail
    assert checks["index"].fix is not None and "rebuild" in checks["index"].fix


def test_pair_added_to_the_db_after_indexing_makes_the_index_stale(root: Path) -> None:
    """A checked, active pair the index lacks (as after a crash between the DB commit
    and the index save) fails the index check."""
    with sqlite3.connect(root / "state" / "inboxd.db") as conn:
        cursor = conn.execute(
            "INSERT INTO pairs (hash, question, answer, first_batch_id, created_at, dedup_at)"
            " VALUES ('extra', 'What is extra?', 'Something extra.', 1, 0, 0)"
        )
        conn.execute(
            "INSERT INTO pair_sources (pair_id, batch_id, position) VALUES (?, 1, 'item 99')",
            [cursor.lastrowid],
        )
    conn.close()
    count = indexed(root)
    checks = checks_of(root)
    assert failed(checks) == {"index"}
    assert f"holds {count} pairs, the DB has {count + 1} to index" in checks["index"].detail


def test_same_count_but_other_pairs_make_the_index_stale(root: Path) -> None:
    """An index whose pair ids differ from the DB's (same count) fails the index check."""
    meta_path = root / "state" / "index" / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["ids_sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    checks = checks_of(root)
    assert failed(checks) == {"index"}
    assert "not the ones the DB names" in checks["index"].detail


def test_unknown_provider_name_fails_config_naming_the_key(root: Path) -> None:
    """`provider = "openai"` fails the config check with the key; the checks that need a
    config are skipped, the folders are still checked."""
    (root / CONFIG_FILE_NAME).write_text('[embeddings]\nprovider = "openai"\n')
    checks = checks_of(root)
    assert failed(checks) == {"config"}
    assert "embeddings.provider" in checks["config"].detail
    assert checks["folders"].outcome is Outcome.OK
    skipped = {name for name, check in checks.items() if check.outcome is Outcome.SKIP}
    assert skipped == {"catalog", "state", "database", "index", "providers", "model"}


def test_provider_not_available_in_this_install_fails_providers(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that cannot be built here (gemini embeddings with no API key) fails the
    providers check, saying why; the index and model checks, which need it, are skipped."""
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    (root / CONFIG_FILE_NAME).write_text('[embeddings]\nprovider = "gemini"\n')
    checks = checks_of(root)
    assert failed(checks) == {"providers"}
    assert "GEMINI_API_KEY" in checks["providers"].detail
    assert checks["index"].outcome is Outcome.SKIP
    assert checks["model"].outcome is Outcome.SKIP


def test_doctor_changes_no_file_of_the_root(root: Path) -> None:
    """Doctor leaves every file of the root as it was (the DB is opened read-only); the
    only files it may add are the DB's -wal/-shm, which a reader of a WAL DB creates,
    and those belong to the DB's owner (not to root running doctor, which would lock the
    daemon's user out of its own DB). As root on a stopped daemon's DB it adds none."""
    if os.geteuid() == 0:
        os.chown(root / "state" / "inboxd.db", NOBODY, NOBODY)  # as the daemon's user's

    def snapshot() -> dict[str, tuple[int, int]]:
        return {
            str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*")
            if p.is_file()
        }

    before = snapshot()
    run_checks(root, model=False)
    after = snapshot()
    assert {k: v for k, v in after.items() if k in before} == before
    added = set(after) - set(before)
    assert added <= {"state/inboxd.db-wal", "state/inboxd.db-shm"}
    if os.geteuid() == 0:
        assert not added  # opened immutable: nothing to hand over
    owner = (root / "state" / "inboxd.db").stat().st_uid
    assert {(root / name).stat().st_uid for name in added} <= {owner}
