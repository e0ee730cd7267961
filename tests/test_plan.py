"""The plan loop: dispatch writes assignments the daemon reads back, pairs resolve to
catalog indicators whatever the agent calls them, progress and gaps follow what
arrived, gap-fill asks for exactly what is missing, and the success report judges the
seed's tiers on the live data."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from builders import as_json, outbox_file, process
from click.testing import CliRunner

from daemon.cli.app import cli
from daemon.core.catalog import load_catalog
from daemon.core.config import Config, load_config
from daemon.core.logs import configure_logging
from daemon.plan import dispatch, reports
from daemon.plan import hooks as plan_hooks
from daemon.plan.assignments import KIND_GAP_FILL
from daemon.plan.coverage import DONE, MISSING, PARTIAL
from daemon.runtime.service import Service
from daemon.stages import Stage
from daemon.stages.ingest import import_pairs
from daemon.stages.settle import settle
from daemon.stages.validate import validate
from daemon.states import BatchState
from daemon.store import Store
from daemon.store import sessions as plan_db

INTAKE: dict[BatchState, Stage] = {
    BatchState.DETECTED: settle,
    BatchState.SETTLED: validate,
    BatchState.VALIDATED: import_pairs,
}

# A small user catalog: three sessions of two indicators, so a gap test can name every gap.
SMALL_CATALOG = """
[[sessions]]
number = 1
theme = "Trend"
category = "trend"

[[sessions]]
number = 2
theme = "Momentum"
category = "momentum"

[[sessions]]
number = 3
theme = "Volume"
category = "volume"

[[indicators]]
id = "sma"
name = "Simple Moving Average"
session = 1
category = "trend"

[[indicators]]
id = "ema"
name = "Exponential Moving Average"
session = 1
category = "trend"

[[indicators]]
id = "rsi"
name = "Relative Strength Index"
aliases = ["RSI (14)"]
session = 2
category = "momentum"

[[indicators]]
id = "roc"
name = "Rate of Change"
session = 2
category = "momentum"

[[indicators]]
id = "obv"
name = "On-Balance Volume"
session = 3
category = "volume"

[[indicators]]
id = "vwap"
name = "Volume Weighted Average Price"
session = 3
category = "volume"
"""
SMALL_COVERAGE = {
    "target_pairs": 4,
    "question_types": ["definition", "calculation"],
    "difficulties": ["beginner", "expert"],
}
FULL_MIX = [("definition", "beginner"), ("calculation", "expert")]


@pytest.fixture(autouse=True)
def quiet_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("INBOXD_") or name in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
            monkeypatch.delenv(name)
    configure_logging("json", "warning", stream=io.StringIO())
    yield
    structlog.reset_defaults()


def config_for(root: Path, **overrides: Any) -> Config:
    return load_config(
        root,
        overrides={"watch": {"settle_seconds": 0.0, "poll_seconds": 0.01}, **overrides},
    )


def small_root(tmp_path: Path) -> Config:
    root = tmp_path / "root"
    root.mkdir()
    (root / "catalog.toml").write_text(SMALL_CATALOG)
    return config_for(root, catalog_path=root / "catalog.toml", coverage=SMALL_COVERAGE)


def run_intake(config: Config) -> None:
    """The real daemon's intake on ``config.root`` (watcher off), until idle."""
    process(config, stages=dict(INTAKE))


def qa(indicator: str, count: int, mix: list[tuple[str, str]] = FULL_MIX, tag: str = "") -> bytes:
    """A file of ``count`` distinct pairs cycling through (type, difficulty) ``mix``."""
    items = []
    for n in range(count):
        kind, level = mix[n % len(mix)]
        items.append(
            {
                "question": f"{tag}Question {n} about {indicator}: how is it read as {kind}?",
                "answer": f"{tag}Answer {n}: {indicator} explained at {level} level in detail.",
                "type": kind,
                "difficulty": level,
            }
        )
    return as_json({"indicator": indicator, "qa_pairs": items})


def gather(config: Config) -> Any:
    """Progress and gaps of the root, read as ``inboxd status`` does."""
    store = Store(config.db_path, readonly=True)
    try:
        return reports.gather(store, config)
    finally:
        store.close()


def query(config: Config, sql: str) -> list[tuple[Any, ...]]:
    store = Store(config.db_path, readonly=True)
    try:
        return [tuple(row) for row in store.db.execute(sql).fetchall()]
    finally:
        store.close()


def with_store(config: Config) -> Store:
    store = Store(config.db_path)
    store.migrate()
    return store


# -- dispatch and reading assignments --------------------------------------------------


def test_dispatch_output_round_trips_to_exactly_the_catalog_sessions(tmp_path: Path) -> None:
    """The files dispatch writes, read by a daemon on another root, register every
    session still to deliver with exactly its catalog indicators."""
    writer = config_for(tmp_path / "writer")
    catalog = load_catalog()
    store = with_store(writer)
    try:
        sessions = dispatch.parse_sessions(None, catalog)
        result = dispatch.dispatch_plan(
            store, writer, catalog, "droid", sessions, force=False, now=time.time()
        )
    finally:
        store.close()
    assert sessions == list(range(2, 45))
    names = sorted(p.rsplit("/", 1)[-1] for p in result.written)
    assert "MASTER_EXECUTION_PLAN.md" in names and "SESSION_INDEX.md" in names
    assert len(names) == 43 + 2

    reader = config_for(tmp_path / "reader")
    shutil.copytree(writer.inbox_dir, reader.inbox_dir)
    run_intake(reader)
    store = Store(reader.db_path, readonly=True)
    try:
        registered = {row["session"]: row for row in plan_db.assignments(store.db)}
    finally:
        store.close()
    assert sorted(registered) == sessions
    for number, row in registered.items():
        expected = [i.id for i in catalog.indicators_for_session(number)]
        assert row["indicators"] == expected
        assert row["title"] == catalog.session(number).theme
        assert (row["kind"], row["source"], row["agent"]) == ("plan", "person", "droid")


def test_a_person_written_assignment_registers_its_session(
    tmp_path: Path, examples_root: Path
) -> None:
    """The design's example assignment (written by hand) registers session 2."""
    config = config_for(tmp_path / "root")
    target = config.inbox_dir / "droid" / "session-02-assignment.md"
    target.parent.mkdir(parents=True)
    shutil.copy(examples_root / "inbox" / "droid" / "session-02-assignment.md", target)
    run_intake(config)
    store = Store(config.db_path, readonly=True)
    try:
        (row,) = plan_db.assignments(store.db)
    finally:
        store.close()
    assert (row["session"], row["source"]) == (2, "person")
    assert row["indicators"] == ["sma", "ema", "wma", "macd", "adx"]


def test_dispatch_keeps_an_edited_file_writes_the_rest_and_force_replaces_it(
    tmp_path: Path,
) -> None:
    """A file a person changed after dispatch wrote it is kept and listed while every
    other file is still written (exit 0); --force replaces it; running dispatch again on
    untouched files writes nothing."""
    root = tmp_path / "root"
    runner = CliRunner()
    args = ["--root", str(root), "--log-level", "error", "dispatch", "--sessions", "2-3"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "4 file(s) written" in first.output and "sessions registered: 2-3" in first.output
    again = runner.invoke(cli, args)
    assert again.exit_code == 0 and "0 file(s) written, 4 unchanged" in again.output

    edited = root / "inbox" / "droid" / "session-02-assignment.md"
    edited.write_text(edited.read_text() + "\nAlso: add a worked BTC example.\n")
    sibling = root / "inbox" / "droid" / "session-03-assignment.md"
    sibling.unlink()
    kept = runner.invoke(cli, args)
    assert kept.exit_code == 0, kept.output
    assert "1 file(s) written, 2 unchanged" in kept.output
    assert "kept 1 file(s) a person wrote or edited" in kept.output
    assert "inbox/droid/session-02-assignment.md" in kept.output and "--force" in kept.output
    assert edited.read_text().endswith("worked BTC example.\n")
    assert sibling.exists()

    forced = runner.invoke(cli, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert "kept" not in forced.output
    assert "worked BTC example" not in edited.read_text()


def test_dispatch_writes_every_other_assignment_beside_a_persons_file(tmp_path: Path) -> None:
    """An inbox already holding one assignment a person wrote gets the other 42 sessions'
    assignments and the plan files; the person's file is untouched and listed."""
    root = tmp_path / "root"
    mine = root / "inbox" / "droid" / "session-02-assignment.md"
    mine.parent.mkdir(parents=True)
    mine.write_text("# Session 2: my own words\n\n## Indicators\n- sma\n")
    result = CliRunner().invoke(cli, ["dispatch", "--root", str(root), "--log-level", "error"])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in mine.parent.glob("session-*-assignment.md"))
    assert len(written) == 43  # sessions 2-44
    assert mine.read_text().startswith("# Session 2: my own words")
    assert "44 file(s) written" in result.output  # 42 sessions + plan + index
    assert "sessions registered: 3-44" in result.output
    assert "inbox/droid/session-02-assignment.md" in result.output


def test_sessions_option_rejects_unknown_sessions(tmp_path: Path) -> None:
    """`dispatch --sessions` naming a session the catalog lacks exits 1 and names it."""
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "dispatch", "--sessions", "2-3,99"])
    assert result.exit_code == 1
    assert "session(s) 99 are not in the catalog" in result.output


# -- indicator resolution ----------------------------------------------------------------


@pytest.mark.parametrize(
    "relpath",
    [
        "RSI_qa_pairs.json",
        "relative-strength-index_qa_pairs.json",
        "session_04/rsi.json",
        "Relative Strength Index.jsonl",
        "rsi_14_qa_pairs.json",
    ],
)
def test_file_name_spellings_resolve_to_the_catalog_indicator(tmp_path: Path, relpath: str) -> None:
    """Every usual spelling of an indicator in a file name resolves to its catalog id."""
    config = config_for(tmp_path / "root")
    items = [{"question": f"What does RSI say? ({relpath})", "answer": "Momentum, 0-100."}]
    data = (
        b"\n".join(json.dumps(i).encode() for i in items)
        if relpath.endswith(".jsonl")
        else as_json(items)
    )
    outbox_file(config.root, relpath, data, agent="droid")
    run_intake(config)
    assert query(config, "SELECT indicator, session FROM pairs") == [("rsi", 4)]


def test_pair_and_file_fields_resolve_through_aliases(tmp_path: Path) -> None:
    """``RSI (14)`` in a pair resolves through an alias, the file's ``indicator_name``
    through the catalog's names; a pair naming something unknown falls back to the
    file's known indicator rather than staying unresolved."""
    config = small_root(tmp_path)
    items = [
        {"question": "q1 about momentum", "answer": "a1", "indicator": "RSI (14)"},
        {"question": "q2 about momentum", "answer": "a2"},
        {"question": "q3 about something", "answer": "a3", "indicator": "Mystery Index"},
    ]
    fields = {"indicator_name": "Rate of Change"}
    outbox_file(config.root, "misc.json", as_json({**fields, "qa_pairs": items}), agent="droid")
    run_intake(config)
    rows = query(config, "SELECT question, indicator FROM pairs ORDER BY id")
    found = gather(config)
    assert dict(rows) == {
        "q1 about momentum": "rsi",
        "q2 about momentum": "roc",
        # The pair's own name is unknown, so the file's (known) one is used.
        "q3 about something": "roc",
    }
    assert found.unresolved == []


def test_unknown_indicators_are_kept_and_reported(tmp_path: Path) -> None:
    """Pairs about an indicator the catalog lacks are kept, listed and warned about."""
    config = small_root(tmp_path)
    outbox_file(
        config.root,
        "mystery_index_qa_pairs.json",
        as_json([{"question": "What is it?", "answer": "Nobody knows."}]),
        agent="droid",
    )
    run_intake(config)
    found = gather(config)
    assert found.unresolved == [
        {
            "indicator": "mystery_index",
            "pairs": 1,
            "files": ["outbox/droid/mystery_index_qa_pairs.json"],
        }
    ]
    assert any("'mystery_index'" in w and "catalog does not know" in w for w in found.warnings)


# -- progress, gaps and gap-fill ---------------------------------------------------------


def deliver_partial_tree(config: Config) -> None:
    """Session 1 complete; session 2: rsi without calculation pairs, roc thin; session 3
    not delivered."""
    root = config.root
    outbox_file(root, "session_01/sma_qa_pairs.json", qa("sma", 4), agent="droid")
    outbox_file(root, "session_01/ema_qa_pairs.json", qa("ema", 5), agent="droid")
    only_definitions = [("definition", "beginner"), ("definition", "expert")]
    outbox_file(root, "session_02/rsi_qa_pairs.json", qa("rsi", 4, only_definitions), agent="droid")
    outbox_file(root, "session_02/roc_qa_pairs.json", qa("roc", 2), agent="droid")


def test_a_partial_tree_yields_exactly_its_gaps(tmp_path: Path) -> None:
    """A partial delivery yields exactly its gaps, in gaps.json and gaps.md alike."""
    config = small_root(tmp_path)
    deliver_partial_tree(config)
    run_intake(config)
    found = gather(config)
    gaps, paths = reports.write_gaps(config, found)
    assert gaps["indicators_without_pairs"] == ["obv", "vwap"]
    assert gaps["indicators_below_target"] == [{"indicator": "roc", "active": 2, "need": 2}]
    assert gaps["missing_question_types"] == {"rsi": ["calculation"]}
    assert gaps["missing_difficulties"] == {}
    assert gaps["sessions_not_delivered"] == [3]
    assert gaps["near_empty_categories"] == ["volume"]
    assert {p.name for p in paths} == {"gaps.json", "gaps.md"}
    markdown = (config.reports_dir / "gaps.md").read_text()
    assert "obv, vwap" in markdown and "| roc | 2 | 2 |" in markdown
    statuses = {s.number: s.status for s in found.sessions}
    assert statuses == {1: DONE, 2: PARTIAL, 3: MISSING}


def test_gap_fill_names_exactly_the_gaps_and_delivery_closes_them(tmp_path: Path) -> None:
    """Gap-fill dispatches sessions for exactly the gaps, and delivering them closes them."""
    config = small_root(tmp_path)
    deliver_partial_tree(config)
    run_intake(config)
    catalog = load_catalog(config.catalog_path)
    store = with_store(config)
    try:
        found = reports.gather(store, config, catalog)
        result = dispatch.dispatch_gaps(
            store, config, catalog, "droid", found, force=False, now=time.time()
        )
        again = dispatch.dispatch_gaps(
            store,
            config,
            catalog,
            "droid",
            reports.gather(store, config, catalog),
            force=False,
            now=time.time(),
        )
    finally:
        store.close()
    assert result.sessions == [4, 5]  # numbered after the catalog's last session
    assert again.sessions == [] and again.written == []  # open asks are not repeated

    # The daemon reads its own gap-fill files back with exactly what they ask.
    run_intake(config)
    store = Store(config.db_path, readonly=True)
    try:
        asked = {
            row["session"]: (row["kind"], row["requests"]) for row in plan_db.assignments(store.db)
        }
    finally:
        store.close()
    assert asked == {
        4: (
            KIND_GAP_FILL,
            [
                {"indicator": "rsi", "pairs": 0, "types": ["calculation"], "difficulties": []},
                {"indicator": "roc", "pairs": 2, "types": [], "difficulties": []},
            ],
        ),
        5: (
            KIND_GAP_FILL,
            [
                {"indicator": "obv", "pairs": 4, "types": [], "difficulties": []},
                {"indicator": "vwap", "pairs": 4, "types": [], "difficulties": []},
            ],
        ),
    }

    root = config.root
    calc = [("calculation", "expert")]
    outbox_file(root, "session_04/rsi_qa_pairs.json", qa("rsi", 2, calc, "gap "), agent="droid")
    outbox_file(root, "session_04/roc_qa_pairs.json", qa("roc", 2, tag="gap "), agent="droid")
    outbox_file(root, "session_05/obv_qa_pairs.json", qa("obv", 4), agent="droid")
    run_intake(config)
    midway = gather(config)
    by_number = {s.number: s.status for s in midway.sessions}
    assert (by_number[4], by_number[5]) == (DONE, PARTIAL)
    assert coverage_gaps(midway) == {"indicators_without_pairs": ["vwap"]}

    outbox_file(root, "session_05/vwap_qa_pairs.json", qa("vwap", 4), agent="droid")
    run_intake(config)
    closed = gather(config)
    assert coverage_gaps(closed) == {}
    assert {s.number: s.status for s in closed.sessions} == dict.fromkeys(range(1, 6), DONE)


def coverage_gaps(found: Any) -> dict[str, Any]:
    """The non-empty gap lists (warnings and labels aside)."""
    from daemon.plan.coverage import gaps

    keys = (
        "indicators_without_pairs",
        "indicators_below_target",
        "missing_question_types",
        "missing_difficulties",
        "sessions_not_delivered",
    )
    return {key: value for key, value in gaps(found).items() if key in keys and value}


def test_corpus_run_writes_reports_and_dispatches_gaps_when_asked(tmp_path: Path) -> None:
    """After a corpus run: gaps.* and success.* in state/reports/; with
    auto_dispatch_gaps on, the follow-up assignments land in the agent's inbox."""
    base = small_root(tmp_path)
    config = config_for(
        base.root,
        catalog_path=base.catalog_path,
        coverage={**SMALL_COVERAGE, "auto_dispatch_gaps": True},
    )
    deliver_partial_tree(config)
    service = Service(config, stages=dict(INTAKE))
    pipeline = service.start(watch=False)
    try:
        service.run_once()
        plan_hooks.after_corpus_run(pipeline.ctx, time.time())
    finally:
        service.stop()
    written = sorted(p.name for p in config.reports_dir.iterdir())
    assert written == ["gaps.json", "gaps.md", "success.json", "success.md"]
    inbox = sorted(p.name for p in (config.inbox_dir / "droid").iterdir())
    assert inbox == ["session-04-assignment.md", "session-05-assignment.md"]


def test_status_shows_sessions_and_warns_when_status_txt_disagrees(tmp_path: Path) -> None:
    """`status` lists each session's state and warns when status.txt claims more."""
    config = small_root(tmp_path)
    deliver_partial_tree(config)
    outbox_file(
        config.root, "status.txt", "Sessions Complete: 3/3\nCurrent Session: 3\n", agent="droid"
    )
    run_intake(config)
    result = CliRunner().invoke(
        cli,
        ["--root", str(config.root), "--config", str(write_config(config)), "status", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["headline"]["sessions"] == {"done": 1, "partial": 1, "missing": 1}
    assert [s["status"] for s in report["sessions"]] == [DONE, PARTIAL, MISSING]
    assert any(
        "says 3 session(s) complete, but only 2 delivered every expected file" in w
        for w in report["warnings"]
    )


def write_config(config: Config) -> Path:
    """The small catalog and coverage as an inboxd.toml the CLI reads."""
    path = config.root / "inboxd.toml"
    types = json.dumps(SMALL_COVERAGE["question_types"])
    levels = json.dumps(SMALL_COVERAGE["difficulties"])
    path.write_text(
        f'catalog_path = "{config.catalog_path}"\n\n[coverage]\n'
        f"target_pairs = {SMALL_COVERAGE['target_pairs']}\n"
        f"question_types = {types}\ndifficulties = {levels}\n"
    )
    return path


# -- success report ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_17k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """75 pairs for each of the shipped catalog's 227 indicators (17,025), imported."""
    root = tmp_path_factory.mktemp("corpus") / "root"
    config = config_for(root)
    for indicator in load_catalog().indicators:
        outbox_file(root, f"{indicator.id}_qa_pairs.json", qa(indicator.id, 75), agent="droid")
    configure_logging("json", "warning", stream=io.StringIO())
    run_intake(config)
    return root


def test_success_report_on_a_generated_17k_corpus_reaches_minimum(corpus_17k: Path) -> None:
    """The success report on a generated 17k-pair corpus reaches the minimum tier only."""
    config = config_for(corpus_17k)
    store = Store(config.db_path, readonly=True)
    try:
        report = reports.success_report(store, config)
    finally:
        store.close()
    facts = report["facts"]
    assert (facts["pairs"], facts["indicators_covered"]) == (17_025, 227)
    assert report["reached"] == "minimum"
    assert report["tiers"]["target"]["met"] is False  # 17,025 < 20,000 and nothing scored
    reports.write_success(config, report)
    assert "Tier reached: **Minimum**" in (config.reports_dir / "success.md").read_text()


def test_a_rejected_file_breaks_valid_json_throughout(tmp_path: Path, corpus_17k: Path) -> None:
    """One rejected file fails the "valid JSON throughout" criterion and the minimum tier."""
    root = tmp_path / "copy"
    shutil.copytree(corpus_17k, root, ignore=shutil.ignore_patterns("*.lock"))
    config = config_for(root)
    outbox_file(root, "broken_qa_pairs.json", b'[{"question": "cut', agent="droid")
    run_intake(config)
    store = Store(config.db_path, readonly=True)
    try:
        report = reports.success_report(store, config)
    finally:
        store.close()
    (valid,) = [c for c in report["tiers"]["minimum"]["criteria"] if "valid JSON" in c["criterion"]]
    assert valid["met"] is False and valid["measured"].startswith("1 file(s) rejected")
    assert report["reached"] is None


@pytest.fixture(scope="module")
def measured(corpus_17k: Path) -> reports.SuccessFacts:
    config = config_for(corpus_17k)
    store = Store(config.db_path, readonly=True)
    try:
        found = reports.gather(store, config)
        return reports.facts_of(found, plan_db.import_health(store.db), None)
    finally:
        store.close()


TARGET_OK = {"pairs": 20_000, "average_quality": 80.0}
OUTSTANDING_OK = {"pairs": 22_000, "average_quality": 85.0, "premium_share": 0.90}


@pytest.mark.parametrize(
    ("change", "reached"),
    [
        ({"pairs": 17_000}, "minimum"),
        ({"pairs": 16_999}, None),
        ({"indicators_covered": 226}, None),
        ({"invalid_items": 1}, None),
        ({"failed_batches": 1}, None),
        ({"unfinished_batches": 1}, None),
        (TARGET_OK, "target"),
        ({**TARGET_OK, "pairs": 19_999}, "minimum"),
        ({**TARGET_OK, "average_quality": 79.9}, "minimum"),
        ({**TARGET_OK, "retrieval_improved": False}, "minimum"),
        ({**TARGET_OK, "retrieval_improved": True}, "target"),
        (OUTSTANDING_OK, "outstanding"),
        ({**OUTSTANDING_OK, "pairs": 21_999}, "target"),
        ({**OUTSTANDING_OK, "premium_share": 0.8999}, "target"),
        ({**OUTSTANDING_OK, "average_quality": 79.0}, "minimum"),
        ({**OUTSTANDING_OK, "retrieval_improved": True}, "outstanding"),
        (
            {
                **OUTSTANDING_OK,
                "retrieval_improved": True,
                "retrieval_significantly_improved": False,
            },
            "target",
        ),
    ],
)
def test_tiers_on_each_side_of_every_threshold(
    measured: reports.SuccessFacts, change: dict[str, Any], reached: str | None
) -> None:
    """The measured 17k corpus, moved just across one threshold at a time."""
    facts = dataclasses.replace(measured, **change)
    assert reports.evaluate(facts)["reached"] == reached


def test_retrieval_counts_once_an_evaluation_has_run(tmp_path: Path, corpus_17k: Path) -> None:
    """The latest eval.json feeds the retrieval criteria; without one they are shown as
    not evaluated and do not block a tier."""
    config = config_for(corpus_17k)
    store = Store(config.db_path, readonly=True)
    try:
        before = reports.success_report(store, config)
        config.reports_dir.mkdir(parents=True, exist_ok=True)
        eval_file = config.reports_dir / "eval.json"
        eval_file.write_text(
            json.dumps({"improved": True, "significantly_improved": False, "summary": "hit@5 +9"})
        )
        try:
            after = reports.success_report(store, config)
        finally:
            eval_file.unlink()
    finally:
        store.close()
    (rag_before,) = [c for c in before["tiers"]["target"]["criteria"] if "RAG" in c["criterion"]]
    (rag_after,) = [c for c in after["tiers"]["target"]["criteria"] if "RAG" in c["criterion"]]
    assert rag_before["met"] is None and "no evaluation yet" in rag_before["measured"]
    assert (rag_after["met"], rag_after["measured"]) == (True, "hit@5 +9")


def test_with_a_gemini_provider_the_report_shows_spend_and_judge_progress(
    tmp_path: Path,
) -> None:
    """No call made yet: zero spend against the budget, every active pair pending."""
    config = small_root(tmp_path)
    deliver_partial_tree(config)
    run_intake(config)
    gemini = config_for(
        config.root,
        catalog_path=config.catalog_path,
        coverage=SMALL_COVERAGE,
        scoring={"provider": "gemini"},
    )
    store = Store(gemini.db_path)
    try:
        store.migrate()
        report = reports.success_report(store, gemini)
    finally:
        store.close()
    spend = report["gemini_spend"]
    assert (spend["spent_usd"], spend["budget_stopped"]) == (0.0, False)
    assert spend["judge"]["pending"] == 15  # 4 + 5 + 4 + 2 pairs, none judged
    assert "## Gemini spend" in reports.render_success(report)
