"""Feedback for the agent: what was wrong with a delivered file, written into
``inbox/<agent>/feedback/`` as Markdown (to read) and JSON (to parse)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daemon.core import atomic
from daemon.core.records import PairError
from daemon.ingest.layout import FEEDBACK_DIR

_SHOWN = 200  # a file with thousands of errors gets the first ones and a count
#: Bytes of a delivered file's name kept in its feedback file's name. File systems
#: allow 255 bytes a name: the rest is the version and the extension, and a longer name
#: (or a deep path, flattened) is cut and told apart by a hash of the whole.
_STEM_BYTES = 160
_CUT_BYTES = 120


def _stem(relpath: str) -> str:
    """``outbox/a/session_02/sma.json`` -> ``session_02__sma``, at most _STEM_BYTES."""
    stem = relpath.split("/", 2)[-1].replace("/", "__").rsplit(".", 1)[0]
    encoded = stem.encode("utf-8")
    if len(encoded) <= _STEM_BYTES:
        return stem
    head = encoded[:_CUT_BYTES].decode("utf-8", "ignore")  # not half a character
    return f"{head}~{hashlib.sha256(encoded).hexdigest()[:16]}"


def _paths(inbox_dir: Path, agent: str, base: str) -> tuple[Path, Path]:
    folder = inbox_dir / agent / FEEDBACK_DIR
    return folder / f"{base}.md", folder / f"{base}.json"


def feedback_paths(inbox_dir: Path, agent: str, relpath: str, sha256: str) -> tuple[Path, Path]:
    """The Markdown and JSON feedback files for one version of a delivered file."""
    # Not Path.with_suffix: it would replace the ".<sha>" part and one version's
    # feedback would overwrite another's.
    return _paths(inbox_dir, agent, f"{_stem(relpath)}.{sha256[:8]}")


def refusal_paths(inbox_dir: Path, agent: str, relpath: str) -> tuple[Path, Path]:
    """The Markdown and JSON feedback files on a file that was refused (not read)."""
    # No version to tell apart, but ``x.json`` and ``x.jsonl`` have the same stem.
    path_hash = hashlib.sha256(relpath.encode("utf-8")).hexdigest()[:8]
    return _paths(inbox_dir, agent, f"{_stem(relpath)}.refused-{path_hash}")


def _cell(text: str) -> str:
    """Text that cannot break a Markdown table row."""
    return " ".join(text.replace("|", "/").split())


def write_feedback(
    inbox_dir: Path,
    *,
    agent: str,
    relpath: str,
    sha256: str,
    imported: int,
    errors: Sequence[PairError],
    rejected_reason: str | None = None,
    extra_markdown: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write (or rewrite, idempotently) the feedback for one file version; later
    stages add their sections (``extra_markdown`` lines, ``extra`` JSON keys)."""
    md_path, json_path = feedback_paths(inbox_dir, agent, relpath, sha256)
    if rejected_reason:
        verdict = f"**Rejected whole**: {rejected_reason}\n\nNothing from this file was imported."
    elif not errors:
        verdict = f"{imported} pair(s) imported; every item was valid."
    else:
        verdict = (
            f"{imported} pair(s) imported; {len(errors)} item(s) were not, "
            "listed below. Fix them and deliver the file again: pairs already "
            "imported are not duplicated."
        )
    lines = [f"# Feedback on `{relpath}`", "", f"Version sha256 `{sha256}`.", "", verdict, ""]
    if errors:
        lines += ["| position | reason |", "|---|---|"]
        lines += [f"| `{e.position}` | {_cell(e.reason)} |" for e in errors[:_SHOWN]]
        if len(errors) > _SHOWN:
            lines.append(f"| ... | {len(errors) - _SHOWN} more |")
    if extra_markdown:  # one blank line between sections
        lines += ["", *extra_markdown] if lines[-1] else list(extra_markdown)
    report = {
        "file": relpath,
        "sha256": sha256,
        "rejected": rejected_reason,
        "imported": imported,
        "errors": [{"position": e.position, "reason": e.reason} for e in errors],
        **(extra or {}),
    }
    return _write(md_path, json_path, lines, report)


def write_refusal(inbox_dir: Path, *, agent: str, relpath: str, reason: str) -> Path:
    """Tell the agent why a file was not read at all (one report per file, replaced
    when the reason changes)."""
    md_path, json_path = refusal_paths(inbox_dir, agent, relpath)
    lines = [
        f"# Feedback on `{relpath}`",
        "",
        f"**Refused**: {reason}",
        "",
        "The file was not read and nothing from it was imported. Fix the problem (or",
        "remove the file); this report goes away once the file is taken.",
    ]
    report = {"file": relpath, "refused": reason, "imported": 0, "errors": []}
    return _write(md_path, json_path, lines, report)


def remove_refusal(inbox_dir: Path, *, agent: str, relpath: str) -> None:
    """Remove a refusal report that no longer applies."""
    for path in refusal_paths(inbox_dir, agent, relpath):
        path.unlink(missing_ok=True)


def _write(md_path: Path, json_path: Path, lines: list[str], report: Mapping[str, object]) -> Path:
    # Unchanged reports are not rewritten: a reader watching them sees no churn.
    atomic.write_text_if_changed(md_path, "\n".join(lines) + "\n")
    atomic.write_text_if_changed(json_path, json.dumps(report, indent=2) + "\n")
    return md_path
