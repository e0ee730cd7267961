"""The HTTP server under the loopback fakes (tests/gemini_fake, tests/openai_fake.py):
a ThreadingHTTPServer on 127.0.0.1 that, when closed, leaves no handler thread behind."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackHTTPServer(ThreadingHTTPServer):
    """Serves each connection in a thread, on a free port of 127.0.0.1.

    ``close`` also ends the connections still open: a client that keeps one alive (an
    SDK's connection pool, nobody closes in a test) otherwise holds its handler thread
    blocked on the next request for as long as the test process lives.
    """

    daemon_threads = True  # a handler stuck anyway must not hold up the interpreter's exit
    block_on_close = True  # server_close() joins the handler threads (daemon ones too)

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self._open: set[Any] = set()
        self._guard = threading.Lock()
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"loopback-{self.server_address[1]}",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._guard:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._guard:
            self._open.discard(request)
        super().shutdown_request(request)

    def close(self) -> None:
        """Stop accepting, end every open connection (its handler's next read sees the
        end of the stream), and wait for every handler thread. A handler that waits on
        purpose (a hang, a slow reply) must be woken by its fake first."""
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join()
        with self._guard:
            still_open = list(self._open)
        for request in still_open:
            with contextlib.suppress(OSError):
                request.shutdown(socket.SHUT_RDWR)
        self.server_close()
