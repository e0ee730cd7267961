"""The test suite's own rules, checked like any other behaviour: every test says in a
docstring what it proves, a fixed sleep in a test says why it is not a wait, and the
check that fails a test leaving threads or processes behind finds them."""

from __future__ import annotations

import ast
import io
import signal
import subprocess
import sys
import threading
import time
import tokenize
from pathlib import Path

from conftest import leaked_children, leaked_threads, live_children

TESTS = Path(__file__).resolve().parent


def _test_functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """What pytest collects as tests: ``test*`` functions at module level and in
    ``Test*`` classes (nested helpers are not collected, so not checked)."""
    found: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            found.extend(
                item
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and item.name.startswith("test")
            )
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            found.append(node)
    return found


def test_every_test_has_a_docstring_saying_what_it_proves() -> None:
    """Every collected test function in tests/test_*.py has a docstring of at least a few
    words: the suite reads as the specification of inboxd."""
    missing = []
    for path in sorted(TESTS.glob("test_*.py")):
        for func in _test_functions(ast.parse(path.read_text(), str(path))):
            doc = ast.get_docstring(func) or ""
            if len(doc.split()) < 4:
                missing.append(f"{path.name}:{func.lineno} {func.name}")
    assert not missing, "tests without a docstring saying what they prove:\n" + "\n".join(missing)


def _commented_lines(source: str) -> set[int]:
    """Line numbers that carry a comment."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.start[0] for token in tokens if token.type == tokenize.COMMENT}


def _sleeps(tree: ast.Module) -> list[ast.Call]:
    """Every ``time.sleep(...)`` call."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "sleep"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "time"
    ]


def test_every_fixed_sleep_in_the_suite_says_why() -> None:
    """A fixed ``time.sleep`` in tests/ carries a comment on its line saying why it is not
    a wait on a log event or a polled condition (conftest's ``wait_until``, ``poll_until``
    and ``Daemon.wait_for``/``wait_rescans``)."""
    bare = []
    for path in sorted(TESTS.rglob("*.py")):
        source = path.read_text()
        commented = _commented_lines(source)
        bare.extend(
            f"{path.relative_to(TESTS)}:{call.lineno}: {ast.unparse(call)}"
            for call in _sleeps(ast.parse(source, str(path)))
            if not commented & set(range(call.lineno, (call.end_lineno or call.lineno) + 1))
        )
    assert not bare, "sleeps without a reason (wait on an event instead?):\n" + "\n".join(bare)


def test_a_thread_still_running_after_its_grace_is_named_and_one_that_ends_is_not() -> None:
    """The leak check joins new threads until its deadline, then names those alive."""
    before = set(threading.enumerate())
    release = threading.Event()
    stuck = threading.Thread(target=release.wait, name="stuck-for-the-test", daemon=True)
    quick = threading.Thread(target=time.sleep, args=(0.05,), name="ends-in-the-grace")
    stuck.start()
    quick.start()
    try:
        leaked = leaked_threads(before, time.monotonic() + 1.0)
    finally:
        release.set()
        stuck.join()
    assert leaked == ["thread 'stuck-for-the-test' (daemon=True)"]


def test_a_child_still_running_after_its_grace_is_named_and_killed() -> None:
    """The leak check names a child process still running at its deadline and SIGKILLs
    it; a child that already exited is not named."""
    before = live_children()
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    stuck = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        leaked = leaked_children(before, time.monotonic() + 0.5)
        assert stuck.wait(10) == -signal.SIGKILL
    finally:
        stuck.kill()
        stuck.wait()
    assert leaked == [f"process {stuck.pid}: {sys.executable} -c import time; time.sleep(60)"]
