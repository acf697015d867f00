"""A provider API that hangs: it accepts each request and answers none until closed, as a
status API does when its backend stalls behind a load balancer that keeps the socket open."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.servers import LOOPBACK

__all__ = ["HangingAPI"]


class HangingAPI:
    """``url`` is its origin; ``seen`` counts the requests it holds or held."""

    def __init__(self) -> None:
        self._release = threading.Event()
        self._lock = threading.Lock()
        self.seen = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer._lock:
                    outer.seen += 1
                outer._release.wait(600)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
