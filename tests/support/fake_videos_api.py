"""A tiny, stateful fake of OpenAI's Videos API (``GET /v1/videos/{id}``) on a real socket.

Each video id gets a script of replies, served in order; the last one repeats. An id with no
script gets 404 with OpenAI's error envelope. Every request is recorded with the server's
own monotonic clock, so tests measure waits where they happen, not where they were asked.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.servers import LOOPBACK

__all__ = ["FakeVideosAPI", "Reply", "Seen", "video"]

_PREFIX = "/v1/videos/"


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    """JSON-serialisable body; ``None`` sends an empty body."""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    video_id: str
    authorization: str | None
    at: float
    """``time.monotonic()`` when the server received the request."""


def video(video_id: str, status: str, **extra: Any) -> dict[str, Any]:
    """A video object as ``GET /videos/{id}`` returns it."""
    return {
        "id": video_id,
        "object": "video",
        "model": "sora-2",
        "status": status,
        "progress": 100 if status in ("completed", "failed") else 40,
        "created_at": 1_780_000_000,
        "seconds": "8",
        "size": "1280x720",
        **extra,
    }


class FakeVideosAPI:
    """Start with :meth:`start`, stop with :meth:`close`; ``url`` is the API base."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        self._seen: list[Seen] = []
        self._server = ThreadingHTTPServer((LOOPBACK, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def script(self, video_id: str, *replies: Reply) -> None:
        """Serve ``replies`` for ``video_id`` in order; the last one repeats."""
        with self._lock:
            self._scripts[video_id] = list(replies)

    def seen(self, video_id: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self._seen if video_id is None or s.video_id == video_id]

    def _serve(self, video_id: str, authorization: str | None) -> Reply:
        with self._lock:
            self._seen.append(Seen(video_id, authorization, time.monotonic()))
            script = self._scripts.get(video_id)
            if not script:
                error = {"message": "Video not found", "type": "invalid_request_error"}
                return Reply(404, {"error": {**error, "param": None, "code": None}})
            return script.pop(0) if len(script) > 1 else script[0]


def _handler_for(api: FakeVideosAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if not self.path.startswith(_PREFIX) or "/" in self.path[len(_PREFIX) :]:
                self._send(Reply(404, {"error": {"message": "no such route"}}))
                return
            video_id = self.path[len(_PREFIX) :]
            self._send(api._serve(video_id, self.headers.get("Authorization")))

        def _send(self, reply: Reply) -> None:
            body = b"" if reply.body is None else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read ``FakeVideosAPI.seen`` instead."""

    return Handler
