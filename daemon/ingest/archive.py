"""The content-addressed archive: a copy of every file version inboxd took, by sha256,
so nothing is lost when an agent rewrites or removes its file."""

from __future__ import annotations

import hashlib
from pathlib import Path

from daemon.core import atomic
from daemon.core.errors import TransientError

_MAX_SUFFIX = 16


def archive_path(archive_dir: Path, sha256: str, name: str) -> Path:
    """Where the version with this hash lives: ``ab/abcdef....json``."""
    suffix = Path(name).suffix.lower()
    if len(suffix) > _MAX_SUFFIX or not suffix[1:].isalnum() or not suffix.isascii():
        suffix = ""  # the hash names the file; an odd extension is not worth keeping
    return archive_dir / sha256[:2] / f"{sha256}{suffix}"


def store(archive_dir: Path, data: bytes, name: str) -> Path:
    """Archive ``data`` (idempotent: an existing copy with the right hash is kept)."""
    sha256 = hashlib.sha256(data).hexdigest()
    target = archive_path(archive_dir, sha256, name)
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
        return target
    try:
        atomic.write_bytes(target, data, mode=0o444)
    except OSError as exc:
        raise TransientError(f"cannot write the archive copy {target}: {exc.strerror}") from exc
    return target


def load(path: Path, sha256: str) -> bytes:
    """Read an archived version back, checking it is still the bytes it was."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TransientError(f"cannot read the archive copy {path}: {exc.strerror}") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise TransientError(f"the archive copy {path} does not match its hash {sha256[:12]}")
    return data
