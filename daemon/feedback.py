"""Feedback for the agent: what was wrong with a delivered file, written into
``inbox/<agent>/feedback/`` as Markdown (to read) and JSON (to parse)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daemon import atomic
from daemon.layout import FEEDBACK_DIR
from daemon.records import PairError

_SHOWN = 200  # a file with thousands of errors gets the first ones and a count


def feedback_paths(inbox_dir: Path, agent: str, relpath: str, sha256: str) -> tuple[Path, Path]:
    """The Markdown and JSON feedback files for one version of a delivered file."""
    stem = relpath.split("/", 2)[-1].replace("/", "__").rsplit(".", 1)[0]
    # Not Path.with_suffix: it would replace the ".<sha>" part and one version's
    # feedback would overwrite another's.
    base = f"{stem}.{sha256[:8]}"
    folder = inbox_dir / agent / FEEDBACK_DIR
    return folder / f"{base}.md", folder / f"{base}.json"


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
    atomic.write_text_if_changed(md_path, "\n".join(lines) + "\n")
    atomic.write_text_if_changed(
        json_path,
        json.dumps(
            {
                "file": relpath,
                "sha256": sha256,
                "rejected": rejected_reason,
                "imported": imported,
                "errors": [{"position": e.position, "reason": e.reason} for e in errors],
                **(extra or {}),
            },
            indent=2,
        )
        + "\n",
    )
    return md_path
