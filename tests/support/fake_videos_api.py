"""A tiny, stateful fake of OpenAI's Videos API (``GET /v1/videos/{id}``) on a real socket.

Each video id gets a script of replies (:class:`~tests.support.scripted_http.ScriptedHTTPServer`),
served in order; the last one repeats. An id with no script gets 404 with OpenAI's error
envelope. Every request is recorded with the server's own monotonic clock, so tests measure
waits where they happen, not where they were asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.support.scripted_http import Reply, ScriptedHTTPServer, Seen

__all__ = ["FakeVideosAPI", "Reply", "Seen", "video"]

_PREFIX = "/v1/videos/"


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


def _route(path: str, query: Mapping[str, str]) -> str | None:
    video_id = path.removeprefix(_PREFIX)
    return video_id if path.startswith(_PREFIX) and video_id and "/" not in video_id else None


def _not_found(video_id: str) -> Reply:
    error = {"message": "Video not found", "type": "invalid_request_error"}
    return Reply(404, {"error": {**error, "param": None, "code": None}})


class FakeVideosAPI(ScriptedHTTPServer):
    """Start with :meth:`start`, stop with :meth:`close`; ``url`` is the API base."""

    def __init__(self) -> None:
        super().__init__(_route, _not_found)

    @property
    def url(self) -> str:
        return f"{super().url}/v1"
