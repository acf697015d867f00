"""Fakes of the Replicate, Suno-style and Kling status APIs on real loopback sockets, and the
bodies they answer with (shapes from the provider research notes).

Each is a :class:`~tests.support.scripted_http.ScriptedHTTPServer` scripted per job:

- Replicate: ``GET /v1/predictions/{id}`` and ``/v1/trainings/{id}``, key: the id; an
  unknown id gets 404 with an RFC 7807 body;
- Suno-style: ``GET /api/v1/{generate,lyrics,wav}/record-info?taskId=``, key: the task id;
  an unknown task gets HTTP 404 (documented only as "invalid method or path");
- Kling: ``GET /v1/videos/{text2video,image2video}/{id}`` and ``/v1/images/generations/{id}``,
  key: ``"{endpoint}/{id}"`` (``text2video/…``, ``image2video/…``, ``generations/…``); an
  unknown task gets HTTP 404 with code 1203.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.support.scripted_http import Reply, ScriptedHTTPServer

__all__ = [
    "kling_api",
    "kling_task",
    "kling_videos",
    "replicate_api",
    "replicate_prediction",
    "suno_api",
    "suno_record",
    "suno_tracks",
]

SUNO_RECORDS = frozenset(
    {"/api/v1/generate/record-info", "/api/v1/lyrics/record-info", "/api/v1/wav/record-info"}
)
KLING_ENDPOINTS = ("/v1/videos/text2video/", "/v1/videos/image2video/", "/v1/images/generations/")


def _tail(path: str, prefixes: tuple[str, ...]) -> tuple[str, str] | None:
    """``(prefix, id)`` when ``path`` is one of ``prefixes`` followed by a single segment."""
    for prefix in prefixes:
        rest = path.removeprefix(prefix)
        if path.startswith(prefix) and rest and "/" not in rest:
            return prefix, rest
    return None


def _replicate_route(path: str, query: Mapping[str, str]) -> str | None:
    found = _tail(path, ("/v1/predictions/", "/v1/trainings/"))
    return found[1] if found else None


def _suno_route(path: str, query: Mapping[str, str]) -> str | None:
    return query.get("taskId") or None if path in SUNO_RECORDS else None


def _kling_route(path: str, query: Mapping[str, str]) -> str | None:
    found = _tail(path, KLING_ENDPOINTS)
    return f"{found[0].rstrip('/').rsplit('/', 1)[1]}/{found[1]}" if found else None


def replicate_api() -> ScriptedHTTPServer:
    body = {"title": "Not found", "detail": "Not found.", "status": 404}
    return ScriptedHTTPServer(_replicate_route, lambda key: Reply(404, body))


def suno_api() -> ScriptedHTTPServer:
    return ScriptedHTTPServer(
        _suno_route, lambda key: Reply(404, {"code": 404, "msg": "Not Found"})
    )


def kling_api() -> ScriptedHTTPServer:
    body = {"code": 1203, "message": "resource does not exist", "request_id": "req-404"}
    return ScriptedHTTPServer(_kling_route, lambda key: Reply(404, body))


def replicate_prediction(job_id: str, status: str, **extra: Any) -> dict[str, Any]:
    """A prediction as ``GET /v1/predictions/{id}`` returns it."""
    done = status in ("succeeded", "failed", "canceled", "aborted")
    return {
        "id": job_id,
        "model": "acme/video-model",
        "version": "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",
        "status": status,
        "input": {"prompt": "a lighthouse at dusk"},
        "output": None,
        "error": None,
        "logs": "",
        "metrics": {"predict_time": 12.5} if done else {},
        "created_at": "2026-11-23T10:00:00.000Z",
        "started_at": "2026-11-23T10:00:01.000Z",
        "completed_at": "2026-11-23T10:00:14.000Z" if done else None,
        "urls": {"get": f"https://api.replicate.com/v1/predictions/{job_id}"},
        **extra,
    }


def suno_record(
    task_id: str, status: str, *, response: Any = None, kind: str = "GENERATE", **data: Any
) -> dict[str, Any]:
    """A record-info answer: the task in ``data``, its output in ``data.response``."""
    return {
        "code": 200,
        "msg": "success",
        "data": {
            "taskId": task_id,
            "parentMusicId": "",
            "param": '{"prompt":"a calm piano track"}',
            "response": response,
            "status": status,
            "type": kind,
            "errorCode": None,
            "errorMessage": None,
            **data,
        },
    }


def suno_tracks(task_id: str) -> dict[str, Any]:
    """``data.response`` of a finished music task."""
    track = {
        "id": "e231a1b2-0000-4000-8000-00000000cadc",
        "audioUrl": "https://cdn.example/e231.mp3",
        "streamAudioUrl": "https://cdn.example/stream/e231",
        "title": "Peaceful Piano",
        "duration": 198.44,
    }
    return {"taskId": task_id, "sunoData": [track]}


def kling_task(task_id: str, status: str, *, msg: str = "", result: Any = None) -> dict[str, Any]:
    """A legacy task query answer: ``code`` 0 even for a failed task, the task in ``data``."""
    return {
        "code": 0,
        "message": "SUCCEED",
        "request_id": f"req-{task_id}",
        "data": {
            "task_id": task_id,
            "task_status": status,
            "task_status_msg": msg,
            "task_info": {},
            "task_result": result or {},
            "created_at": 1_780_000_000_000,
            "updated_at": 1_780_000_060_000,
        },
    }


def kling_videos() -> dict[str, Any]:
    return {"videos": [{"id": "v1", "url": "https://cdn.example/v1.mp4", "duration": "5.1"}]}
