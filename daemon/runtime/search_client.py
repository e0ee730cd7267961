"""Search from outside the daemon: through the running daemon's socket when there is
one (its model is loaded, its index live), else in this process, read-only.

``inboxd search``, ``inboxd ask`` and the MCP server all search this way. A long-lived
reader (the MCP server) keeps its in-process searcher and opens it again only when the
daemon or ``inboxd refine`` has saved a new index (the model stays loaded).
"""

from __future__ import annotations

import threading
from typing import Any

from daemon.core.config import Config
from daemon.core.errors import InboxdError
from daemon.refine.index import META_FILE
from daemon.runtime.wiring import open_searcher
from daemon.search.searcher import Hit, Mode, Searcher
from daemon.search.server import ask_daemon

DAEMON, IN_PROCESS = "daemon", "in-process"


class LiveSearcher:
    """``Searcher.search`` with the same arguments and results, wherever it runs."""

    def __init__(self, config: Config, log: Any) -> None:
        self.config = config
        self.log = log
        #: Where the last search ran: ``daemon`` or ``in-process``.
        self.via: str | None = None
        self._local: Searcher | None = None
        self._local_key: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def search(
        self,
        query: str,
        *,
        k: int = 5,
        max_distance: float | None = 0.5,
        indicator: str | None = None,
        min_quality: float | None = None,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """The top ``k`` active pairs for ``query``, best first (see ``Searcher.search``)."""
        if not self.config.db_path.exists():
            raise InboxdError(f"no database under {self.config.root}; run `inboxd run` first")
        parameters: dict[str, Any] = {
            "k": k,
            "max_distance": max_distance,
            "indicator": indicator,
            "min_quality": min_quality,
            "mode": mode,
        }
        served = ask_daemon(self.config.state_dir, query, parameters)
        if served is not None:
            self.via = DAEMON
            return [Hit(**hit) for hit in served]
        with self._lock:  # one in-process searcher; its model is not shared across threads
            self.via = IN_PROCESS
            return self._searcher().search(query, **parameters)

    def _index_key(self) -> tuple[int, int] | None:
        try:
            stat = (self.config.index_dir / META_FILE).stat()
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns  # the index is saved by a rename: a new inode

    def _searcher(self) -> Searcher:
        key = self._index_key()
        if self._local is not None and key != self._local_key:
            # A new index was saved since. (The model stays loaded: it is cached per process.)
            self._local.store.close()
            self._local = None
        if self._local is None:
            self._local = open_searcher(self.config, self.log)
            self._local_key = key
        return self._local

    def close(self) -> None:
        with self._lock:
            if self._local is not None:
                self._local.store.close()
                self._local = None
