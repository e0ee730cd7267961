"""Read-only access that leaves the root as it was for the daemon's user.

A reader of a WAL database creates ``-wal`` and ``-shm`` when they are missing (no
process has the database open: the last one to close removes them) and leaves them
behind. Made by root (``sudo inboxd status``, doctor or backup from cron) they would be
root's, and the daemon's user could not open its own database at its next start. So:

- when both are missing and the reader is not the database file's owner, it opens the
  file ``immutable``, which creates nothing;
- any companion a reader still creates (one of the two was there) is given to the
  database file's owner when the reader closes. Nothing is deleted: the daemon may
  have started and be using them.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

_COMPANIONS = ("-wal", "-shm")


def absent_companions(path: Path) -> list[Path]:
    """The database's ``-wal``/``-shm`` files that do not exist now."""
    return [c for c in (Path(f"{path}{suffix}") for suffix in _COMPANIONS) if not c.exists()]


def read_only_uri(path: Path) -> str:
    """The URI a read-only command opens the database with."""
    uri = f"file:{quote(str(path))}?mode=ro"
    try:
        foreign = os.geteuid() != path.stat().st_uid
    except OSError:
        return uri  # sqlite3 reports the missing file
    quiet = len(absent_companions(path)) == len(_COMPANIONS)
    return uri + "&immutable=1" if quiet and foreign else uri


def hand_over(path: Path, absent: list[Path]) -> None:
    """Give companions created since ``absent`` was taken to the database's owner."""
    if not absent or os.geteuid() != 0:
        return  # only root can make files another user cannot open, and chown them
    try:
        owner = path.stat()
        for created in (c for c in absent if c.exists()):
            if created.stat().st_uid != owner.st_uid:
                os.chown(created, owner.st_uid, owner.st_gid)
    except OSError:
        return  # gone meanwhile: nothing left to hand over
