"""A fuzz run through a real ``inboxd run`` process (issue 11): over a thousand
malformed files (truncated JSON, invalid UTF-8, NUL bytes, BOMs, wrong types, huge
strings, deep nesting, empty files, folders named ``*.json``, unreadable files, FIFOs,
links to /dev/zero, out of the root and to nothing, odd and long names, names that are not UTF-8,
duplicate keys, NaN, numbers out of range, bad ``status.txt`` and assignments) beside
valid ones, most there at start and some dropped while it runs.

The daemon stays up and exits 0 on SIGTERM; every valid pair is stored once; every bad
file has a reason (a rejection or item errors at positions, or a refusal); the log is
JSON lines with no traceback.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import DONE_STATES, Daemon, assert_consistent, batches, query

from daemon.core.textid import printable
from daemon.ingest.validation import pair_hash

pytestmark = pytest.mark.slow  # starts a daemon process and loads the model

AGENTS = ["alpha", "beta", "gamma", "delta", "epsilon"]
MAX_FILE_BYTES = 200_000
SEED = 11


@dataclass
class Plan:
    """What was delivered and what must come of it."""

    pairs: dict[str, str] = field(default_factory=dict)  # hash -> question, to be stored
    valid_files: set[str] = field(default_factory=set)  # relpaths, to be imported
    bad: set[str] = field(default_factory=set)  # printable relpaths, each needs a reason
    counter: int = 0

    def pair(self, tag: str) -> dict[str, str]:
        """A new valid pair, expected in the corpus."""
        self.counter += 1
        item = {
            "question": f"{tag} question {self.counter}: what does the indicator show?",
            "answer": f"Fuzz answer {self.counter} for {tag}: the indicator tracks momentum"
            f" over {self.counter % 50 + 2} periods.",
        }
        self.pairs[pair_hash(item["question"], item["answer"])] = item["question"]
        return item


def _deep(levels: int) -> object:
    """A value nested ``levels`` lists deep."""
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


class Fuzzer:
    """Writes files into a root's outbox and inbox and keeps the plan."""

    def __init__(self, root: Path, outside: Path, seed: int) -> None:
        self.root = root
        self.outside = outside
        self.rng = random.Random(seed)
        self.plan = Plan()
        self.made = 0

    def relpath(self, agent: str, name: str) -> str:
        return f"outbox/{agent}/{name}"

    def name(self, stem: str, suffix: str = ".json") -> str:
        self.made += 1
        return f"{stem}_{self.made}{suffix}"

    # -- good files --------------------------------------------------------------------

    def valid(self, agent: str, *, folder: str = "", indicator: str | None = None) -> None:
        items = [self.plan.pair(agent) for _ in range(2)]
        if indicator:
            items[0]["indicator"] = indicator
        shape = self.rng.choice(["array", "object", "jsonl"])
        suffix = ".jsonl" if shape == "jsonl" else ".json"
        name = folder + self.name("valid_qa_pairs", suffix)
        if shape == "jsonl":
            data = "".join(json.dumps(i) + "\n" for i in items).encode()
        elif shape == "object":
            data = json.dumps({"indicator": "rsi", "qa_pairs": items}).encode()
        else:
            data = json.dumps(items).encode()
        _put(self.root / "outbox" / agent / name, data)
        self.plan.valid_files.add(self.relpath(agent, name))

    def mixed(self, agent: str, bad_item: object) -> None:
        """Valid pairs and one bad item: the valid ones stored, the bad one reported."""
        items = [self.plan.pair(agent), bad_item, self.plan.pair(agent)]
        name = self.name("mixed_qa_pairs")
        _put(self.root / "outbox" / agent / name, json.dumps(items).encode())
        self.plan.valid_files.add(self.relpath(agent, name))
        self.plan.bad.add(self.relpath(agent, name))

    # -- bad files ---------------------------------------------------------------------

    def bad(self, agent: str, data: bytes, stem: str = "bad", suffix: str = ".json") -> None:
        name = self.name(stem, suffix)
        _put(self.root / "outbox" / agent / name, data)
        self.plan.bad.add(self.relpath(agent, name))

    def doc(self) -> bytes:
        """A valid document whose pairs are never expected (it gets spoiled)."""
        items = [{"question": f"spoiled {self.rng.random()}?", "answer": "x" * 40}] * 2
        return json.dumps(items, indent=self.rng.choice([None, 2])).encode()

    def spoiled(self, agent: str) -> None:
        """One malformed file of a kind picked at random."""
        rng, doc = self.rng, self.doc()
        kinds: list[Callable[[], bytes]] = [
            lambda: doc[: rng.randrange(0, len(doc) - 1)],  # truncated
            lambda: doc.replace(b"spoiled", b"spo\xc3\x28iled", 1),  # invalid UTF-8
            lambda: doc.replace(b"spoiled", bytes([rng.randrange(0x80, 0x100)]), 1),
            lambda: doc.replace(b"spoiled", b"spo\x00iled", 1),  # NUL in a string
            lambda: doc + b"\x00",  # NUL after the document
            lambda: b"\xef\xbb\xbf" + doc[:-1],  # BOM and truncated
            lambda: b"\xff\xfe" + doc.decode().encode("utf-16-le"),  # UTF-16
            lambda: b"\xef\xbb\xbf\xef\xbb\xbf" + doc,  # two BOMs
            lambda: b"",
            lambda: b" \n\t\n",
            lambda: b"null",
            lambda: b'"just a string"',
            lambda: str(rng.randrange(10**30)).encode(),
            lambda: b'{"no_list_here": true}',
            lambda: b'["a", "b", 3]',
            lambda: json.dumps([{"question": 1, "answer": ["x"]}]).encode(),
            lambda: json.dumps([{"question": "q?", "answer": "a" * 50_000}]).encode(),
            lambda: b"[" * rng.randrange(33, 5_000) + b"]" * 10,
            lambda: json.dumps([{"question": "q?", "answer": "a.", "x": _deep(40)}]).encode(),
            lambda: b"[" + b" " * (MAX_FILE_BYTES + 10) + b"]",
            lambda: b'{"qa_pairs": [], "qa_pairs": []}',
            lambda: b'[{"question": "q?", "question": "q2?", "answer": "a."}]',
            lambda: b'[{"question": "q?", "answer": "a.", "score": NaN}]',
            lambda: b'[{"question": "q?", "answer": "a.", "x": -Infinity, "y": 1e999}]',
            lambda: b'[{"question": "q?", "answer": "a.", "session": 99999999999999999999}]',
            lambda: b"[1" + b"1" * 5_000 + b"]",
            lambda: b"}{][",
            lambda: os.urandom(rng.randrange(1, 400)).replace(b"[", b"(").replace(b"{", b"("),
        ]  # fmt: skip
        self.bad(agent, rng.choice(kinds)(), suffix=rng.choice([".json", ".json", ".jsonl"]))

    def odd(self, agent: str) -> None:
        """Files, folders, links and names that are not plain files with plain names."""
        rng, base = self.rng, self.root / "outbox" / agent
        choice = rng.randrange(10)
        if choice == 0:
            name = self.name("folder")
            (base / name).mkdir(parents=True)
        elif choice == 1:
            name = self.name("unreadable")
            _put(base / name, b"[{")  # root reads it anyway: then it is not JSON
            (base / name).chmod(0)
        elif choice == 2:
            name = self.name("fifo")
            base.mkdir(parents=True, exist_ok=True)
            os.mkfifo(base / name)
        elif choice in (3, 4):
            name = self.name("link")
            base.mkdir(parents=True, exist_ok=True)
            target = "/dev/zero" if choice == 3 else str(self.outside)
            (base / name).symlink_to(target)
        elif choice == 5:  # not UTF-8: refused whatever it holds
            name = os.fsdecode(b"bytes\xff\xfe" + str(self.made).encode() + b".json")
            self.made += 1
            _put(base / name, json.dumps([{"question": "x?", "answer": "y."}]).encode())
        elif choice == 6:  # long names, flat and deep
            name = self.name(rng.choice(["x" * 228, "é" * 110, "d" * 200 + "/" + "e" * 220]))
            _put(base / name, b"[{")
        elif choice == 7:  # odd characters
            stem = rng.choice(["new\nline", "sp ace", "back\\slash", "-dash", "ta\tb", "ü¿"])
            name = self.name(stem)
            _put(base / name, b"not json")
        elif choice == 9:  # a link to nothing
            name = self.name("dangling")
            base.mkdir(parents=True, exist_ok=True)
            (base / name).symlink_to(f"missing-{self.made}.json")
        else:  # a session folder numbered out of range: valid pairs, the path reported
            items = [self.plan.pair(agent)]
            name = self.name("session_" + "9" * 22 + "/valid_qa_pairs")
            _put(base / name, json.dumps(items).encode())
            self.plan.valid_files.add(self.relpath(agent, name))
        self.plan.bad.add(printable(self.relpath(agent, name)))

    def plan_files(self, agent: str) -> None:
        """``status.txt`` and assignments out of range: refused at a position."""
        _put(self.root / "outbox" / agent / "status.txt", b"Sessions Complete: 1/" + b"9" * 30)
        self.plan.bad.add(f"outbox/{agent}/status.txt")
        inbox = self.root / "inbox" / agent
        _put(inbox / "session-99999999999999999999-assignment.md", b"# x\n")
        _put(
            inbox / "session-60-assignment.md",
            "# Session 60 — Gap fill\n\n## Indicators\n\n- rsi — 1e99 more pairs\n- obv — "
            "99999999999999999999 more pairs\n".encode(),
        )
        self.plan.bad |= {
            f"inbox/{agent}/session-99999999999999999999-assignment.md",
            f"inbox/{agent}/session-60-assignment.md",
        }

    def wave(self, bad: int, odd: int, valid: int, mixed: int) -> None:
        for n in range(bad):
            self.spoiled(AGENTS[n % len(AGENTS)])
        for n in range(odd):
            self.odd(AGENTS[n % len(AGENTS)])
        for n in range(valid):
            agent = AGENTS[n % len(AGENTS)]
            folder = f"session_{n % 44 + 1:02d}/" if n % 3 == 0 else ""
            self.valid(agent, folder=folder, indicator="rsi_" + "1" * 40 + "x" if n == 0 else None)
        bad_items: list[object] = [7, "text", None, {"question": ""}, {"answer": "a."}]
        for n in range(mixed):
            self.mixed(AGENTS[n % len(AGENTS)], bad_items[n % len(bad_items)])


def _reasons(root: Path) -> dict[str, str]:
    """Every path with a recorded reason: refused, rejected, or items in error."""
    found: dict[str, str] = dict(query(root, "SELECT path, reason FROM refused_files"))
    latest = {b["path"]: b for b in batches(root)}
    errors = dict(
        query(
            root,
            "SELECT b.path, group_concat(e.position || ': ' || e.reason, '; ') FROM batch_errors e"
            " JOIN batches b ON b.id = e.batch_id GROUP BY b.path",
        )
    )
    for path, batch in latest.items():
        if batch["state"] == "rejected":
            found[path] = batch["reject_reason"] + " " + errors.get(path, "")
        elif path in errors:
            found[path] = errors[path]
    return found


def test_a_thousand_malformed_files_never_stop_the_daemon(
    tmp_path: Path, make_daemon: Callable[..., Daemon]
) -> None:
    """1,000+ malformed files and 200 valid ones through a real daemon: it stays up and
    exits 0 on SIGTERM, each valid pair is stored once, each bad file has its reason,
    and no traceback reaches the log."""
    root = tmp_path / "root"
    for name in ("inbox", "outbox", "state"):
        (root / name).mkdir(parents=True)
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps([{"question": "outside?", "answer": "never read."}]))
    fuzz = Fuzzer(root, outside, SEED)
    fuzz.wave(bad=900, odd=150, valid=160, mixed=25)
    for agent in AGENTS:
        fuzz.plan_files(agent)
    daemon = make_daemon(
        root,
        INBOXD_LIMITS__MAX_FILE_BYTES=str(MAX_FILE_BYTES),
        INBOXD_WATCH__RESCAN_SECONDS="5",
    )
    started = time.monotonic()
    daemon.start()
    fuzz.wave(bad=100, odd=30, valid=40, mixed=5)  # while it runs: seen by the watcher
    plan = fuzz.plan
    assert len(plan.bad) >= 1_000

    def settled() -> bool:
        rows = batches(root)
        if any(b["state"] not in (*DONE_STATES, "rejected", "superseded") for b in rows):
            return False
        states = {b["path"]: b["state"] for b in rows}
        if not all(states.get(p) in DONE_STATES for p in plan.valid_files):
            return False
        return plan.bad <= set(_reasons(root))

    daemon.wait_until(settled, timeout=600, what="every file taken, refused or rejected")
    took = time.monotonic() - started
    assert daemon.alive
    assert daemon.terminate(timeout=60) == 0

    stored = dict(query(root, "SELECT hash, question FROM pairs"))
    assert stored == plan.pairs  # every valid pair once, nothing from a bad file
    reasons = _reasons(root)
    for path in plan.bad:
        assert reasons[path].strip(), path
    rejected = [b for b in batches(root) if b["state"] == "rejected"]
    errors = {p for (p,) in query(root, "SELECT DISTINCT batch_id FROM batch_errors")}
    for batch in rejected:  # a rejection says where reading stopped, or lists positions
        assert "(at " in batch["reject_reason"] or batch["id"] in errors, batch
    content = dict(query(root, "SELECT path, position FROM refused_files WHERE agent != ''"))
    for agent in AGENTS:
        assert content[f"outbox/{agent}/status.txt"] == "line 1, column 22"
    assert not query(root, "SELECT 1 FROM batches WHERE state = 'failed'")
    assert_consistent(root)

    out = daemon.out_path.read_text()
    assert "Traceback" not in out and "Traceback" not in daemon.stderr()
    lines = [json.loads(line) for line in out.splitlines()]  # every line is JSON
    assert not [e for e in lines if "exception" in e or e.get("level") in ("error", "critical")]
    assert daemon.stderr().strip() == ""
    print(f"fuzz: {len(plan.bad)} bad, {len(plan.valid_files)} valid files; {took:.0f}s")
