"""Search served by the running daemon over a UNIX socket, ``state/search.sock``.

A fresh ``inboxd search`` process imports its libraries, opens the ONNX model (about
0.3 s) and the index before its first query; the daemon has all of that already. So
``inboxd search`` asks the daemon first and only searches in-process when no daemon
answers. One JSON line in, one JSON line out; the socket is readable by
the daemon's user and group only.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
import time
from pathlib import Path
from typing import Any

from daemon.core.catalog import Catalog
from daemon.core.errors import InboxdError
from daemon.core.logs import Event, get_logger
from daemon.providers.embedders import Embedder
from daemon.refine.index import VectorIndex
from daemon.search import spelling
from daemon.search.searcher import Searcher
from daemon.store import Store

SOCKET_NAME = "search.sock"
_MAX_REQUEST = 64 * 1024
# Filter arguments a client may pass; anything else is refused, not ignored.
_PARAMETERS = frozenset({"k", "max_distance", "indicator", "min_quality", "mode"})


def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


class SearchServer:
    """Answers search requests from the daemon's live index and loaded model, each on
    its own read-only DB connection so the pipeline's writes are never blocked."""

    def __init__(
        self,
        state_dir: Path,
        db_path: Path,
        index: VectorIndex,
        embedder: Embedder,
        catalog: Catalog,
        scorer: str,
    ) -> None:
        self.path = socket_path(state_dir)
        self.db_path = db_path
        self.parts = (index, embedder, catalog, scorer)
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request's reply: ``{"ok": true, "hits": [...]}`` or ``{"ok": false, "error"}``."""
        query = request.get("query")
        unknown = sorted(set(request) - _PARAMETERS - {"query"})
        if not isinstance(query, str) or unknown:
            return {"ok": False, "error": f"bad request (query missing or unknown {unknown})"}
        store = Store(self.db_path, readonly=True)
        try:
            searcher = Searcher(store, *self.parts)
            started = time.monotonic()
            hits = searcher.search(query, **{k: v for k, v in request.items() if k != "query"})
            get_logger().info(
                Event.SEARCH_SERVED,
                hits=len(hits),
                duration_ms=round((time.monotonic() - started) * 1000, 1),
            )
            return {"ok": True, "hits": [hit.as_dict() for hit in hits]}
        except (InboxdError, TypeError, ValueError) as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a reply, not a silent dead handler thread
            get_logger().exception(Event.SEARCH_NOT_SERVED, error=repr(exc))
            return {"ok": False, "error": f"unexpected error: {exc!r}"}
        finally:
            store.close()

    def prepare_spelling(self) -> None:
        """Read the indexed questions into the respelling vocabulary now, on its own
        read-only connection, so the first misspelled query does not wait for it."""
        store = Store(self.db_path, readonly=True)
        started = time.monotonic()
        try:
            words = spelling.prepare(store, self.parts[0].ids)
        except Exception as exc:  # noqa: BLE001 - a search builds it later instead
            get_logger().warning(Event.SEARCH_VOCABULARY_FAILED, error=repr(exc))
            return
        finally:
            store.close()
        get_logger().info(
            Event.SEARCH_VOCABULARY_READY,
            words=words,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )

    def start(self) -> None:
        # The root lock is ours, so a socket file left here is a dead daemon's.
        self.path.unlink(missing_ok=True)
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(_MAX_REQUEST)
                try:
                    request = json.loads(line)
                    reply = (
                        owner.answer(request)
                        if isinstance(request, dict)
                        else {"ok": False, "error": "bad request (not a JSON object)"}
                    )
                except ValueError:
                    reply = {"ok": False, "error": "bad request (not JSON)"}
                self.wfile.write(json.dumps(reply).encode("utf-8") + b"\n")

        try:
            self._server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        except OSError as exc:
            # e.g. a root so deep the path passes AF_UNIX's 108 bytes: search still works,
            # in each `inboxd search` process.
            get_logger().warning(Event.SEARCH_NOT_SERVED, path=str(self.path), error=str(exc))
            return
        self._server.daemon_threads = True
        self.path.chmod(0o660)
        get_logger().info(Event.SEARCH_SERVING, path=str(self.path))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="search-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.path.unlink(missing_ok=True)


def ask_daemon(
    state_dir: Path, query: str, parameters: dict[str, Any], timeout: float = 30.0
) -> list[dict[str, Any]] | None:
    """Hits from the running daemon, or None when no daemon serves this root."""
    path = socket_path(state_dir)
    if not path.exists():
        return None
    request = json.dumps({"query": query, **parameters}).encode("utf-8") + b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        try:
            client.connect(str(path))
            client.sendall(request)
            with contextlib.closing(client.makefile("rb")) as reader:
                reply = json.loads(reader.readline())
        except (OSError, ValueError):
            # A stale socket file, one not ours to read, a daemon stopping mid-answer:
            # search in-process instead.
            return None
    if not reply.get("ok"):
        raise InboxdError(f"the daemon could not search: {reply.get('error')}")
    hits: list[dict[str, Any]] = reply["hits"]
    return hits
