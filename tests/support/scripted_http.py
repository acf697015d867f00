"""A small, stateful JSON HTTP server on a real loopback socket, scripted per job.

A ``route`` function turns each ``GET`` (path and query) into a key, usually a job id, or
``None`` for a path the fake does not serve. Each key gets a script of replies, served in
order; the last one repeats. A key with no script gets the ``unknown`` reply (the provider's
"not found"). Every routed request is recorded with the server's own clocks, so tests measure
waits where they happen, not where they were asked.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.servers import LOOPBACK

__all__ = ["Reply", "Route", "ScriptedHTTPServer", "Seen"]


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    """JSON-serialisable body; ``None`` sends an empty body."""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    key: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Request headers, names in lower case."""
    at: float
    """``time.monotonic()`` when the server received the request."""
    wall: float
    """``time.time()`` when the server received the request (to check signed timestamps)."""

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


Route = Callable[[str, Mapping[str, str]], str | None]
"""``(path, query) -> key`` of the script that answers, or ``None``: no such route."""

NO_ROUTE = Reply(404, {"error": {"message": "no such route"}})


class ScriptedHTTPServer:
    """Start with :meth:`start` (or ``with``), stop with :meth:`close`; ``url`` is the origin."""

    def __init__(self, route: Route, unknown: Callable[[str], Reply]) -> None:
        self._route = route
        self._unknown = unknown
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        self._seen: list[Seen] = []
        self._server = ThreadingHTTPServer((LOOPBACK, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def _serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.05)  # a prompt shutdown

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> ScriptedHTTPServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def script(self, key: str, *replies: Reply) -> None:
        """Serve ``replies`` for ``key`` in order; the last one repeats."""
        with self._lock:
            self._scripts[key] = list(replies)

    def seen(self, key: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self._seen if key is None or s.key == key]

    def _serve(self, target: str, headers: Mapping[str, str]) -> Reply:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query))
        key = self._route(parts.path, query)
        if key is None:
            return NO_ROUTE
        with self._lock:
            self._seen.append(Seen(key, parts.path, query, headers, time.monotonic(), time.time()))
            script = self._scripts.get(key)
            if not script:
                return self._unknown(key)
            return script.pop(0) if len(script) > 1 else script[0]


def _handler_for(api: ScriptedHTTPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = api._serve(self.path, headers)
            body = b"" if reply.body is None else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read ``ScriptedHTTPServer.seen`` instead."""

    return Handler
