"""MiniMax: music, speech, voice cloning and video; errors live inside HTTP 200 bodies.

Every v1 answer carries ``base_resp {status_code, status_msg}``: a non-zero code is a
business error whatever the HTTP status (https://platform.minimax.io/docs/api-reference/
errorcode). With code 0 the task status sits in a different place per endpoint:

- music and speech (``/v1/music_generation``, ``/v1/t2a_v2``): ``data.status`` 1 is a stream
  chunk (still synthesizing), 2 is done; the output is ``data.audio`` (hex, or a URL with
  ``output_format=url``) or ``data.audio_url``;
- video query (``GET /v1/query/video_generation``) and long speech query
  (``GET /v1/query/t2a_async_query_v2``): a top-level ``status`` word, Preparing | Queueing |
  Processing | Success | Fail (MiniMax's own CLI reads ``Failed``; long speech adds
  ``Expired``); the output is ``file_id``, documented as the deliverable (fetched through
  ``/v1/files/retrieve``). A long-speech task carries its ``file_id`` from the start, so the
  status decides;
- video v2 (``GET /v2/query/video_generation/{id}``): ``task.status`` queued | running |
  succeeded | failed | cancelled, ``task.content.url``, ``task.error {code, message}``; its
  errors are ``{"type": "error", "error": {"type", "message": "… (1026)", "http_code"}}``;
- voice cloning (``/v1/voice_clone``): no status; code 0 means the voice exists under the
  ``voice_id`` the caller chose (it is not echoed back), unless ``input_sensitive`` flags the
  audio; voice design answers ``voice_id`` and ``trial_audio``; file retrieval
  ``file.download_url``;
- image generation (``/v1/image_generation``): no status; ``data.image_urls``, or
  ``data.image_base64`` with ``response_format=base64``, beside ``metadata.success_count``
  (https://platform.minimaxi.com/docs/api-reference/image-generation-t2i);
- lyrics generation (``/v1/lyrics_generation``): no status; ``lyrics`` (the output, text),
  ``song_title`` and ``style_tags`` (https://platform.minimax.io/docs/api-reference/
  lyrics-generation);
- creation of an asynchronous task (video, long speech): ``task_id`` and code 0, no status:
  the job exists and is not finished, ``pending`` (:func:`providers.common.created`).

There is no job id in a synchronous answer: ``trace_id`` names the HTTP request. Codes 1026
(input) and 1027 (output) are sensitive content; any message that speaks of sensitive
content is treated the same way.
"""

from __future__ import annotations

import re
from typing import Final

from ledger.outcomes import Outcome
from providers.base import Classification
from providers.common import (
    Adapter,
    Payload,
    as_int,
    created,
    job_id,
    lookup,
    mapping,
    refuse,
    require_status,
    short,
    status_in,
    text,
)
from providers.outputs import Field, done, find_output

__all__ = ["ADAPTER", "NAME"]

NAME: Final = "minimax"

STREAM_STATUS: Final[dict[int, Outcome]] = {
    1: Outcome.PENDING,  # stream chunk: still synthesizing
    2: Outcome.SUCCEEDED,  # done: only with audio
}

QUERY_STATUS: Final[dict[str, Outcome]] = {
    "Preparing": Outcome.PENDING,
    "Queueing": Outcome.PENDING,
    "Processing": Outcome.PENDING,
    "Success": Outcome.SUCCEEDED,  # only with the file_id (or a URL)
    "Fail": Outcome.FAILED,
    "Failed": Outcome.FAILED,
    "Expired": Outcome.FAILED,  # long speech: the task expired before it was fetched
}

TASK_STATUS: Final[dict[str, Outcome]] = {
    "queued": Outcome.PENDING,
    "running": Outcome.PENDING,
    "succeeded": Outcome.SUCCEEDED,  # only with content.url
    "failed": Outcome.FAILED,  # error.code may say sensitive content
    "cancelled": Outcome.CANCELLED,
}

ERROR_CODES: Final[dict[int, Outcome]] = {
    1002: Outcome.PENDING,  # RPM rate limit, before anything was generated: retry
    1039: Outcome.PENDING,  # TPM rate limit
    1026: Outcome.MODERATED,  # input flagged as sensitive
    1027: Outcome.MODERATED,  # output flagged as sensitive
}
"""Error codes that are not plain failures; every other one (1000 unknown, 1001 timeout,
1004 auth, 1008 balance, 1013 internal, 2013 params, 2038 no cloning rights …) is failed."""

ERROR_TYPES: Final[dict[str, Outcome]] = {
    "rate_limit_error": Outcome.PENDING,
    "unprocessable_entity_error": Outcome.MODERATED,  # 422: input holds sensitive content
}
"""v2 error ``type`` values that are not plain failures."""

SENSITIVE_TEXT: Final = re.compile(r"sensitive", re.IGNORECASE)
TRAILING_CODE: Final = re.compile(r"\((\d{4})\)\s*$")
QUERY_IDS: Final = ("file_id",)
"""A query answer's ``file_id``: the file the task made, fetched through /v1/files/retrieve."""
CLONE_KEYS: Final = ("input_sensitive", "input_sensitive_type", "demo_audio")
LYRICS_KEYS: Final = ("lyrics", "song_title", "style_tags")
"""The keys of a lyrics generation answer (https://platform.minimax.io/docs/api-reference/
lyrics-generation): the lyrics are the output, the title and tags come with them."""


def _rules(payload: Payload, operation: str | None) -> Classification:
    task = mapping(payload.get("task"))
    if task is not None and "status" in task:
        return _v2_task(task)
    if payload.get("type") == "error" and mapping(payload.get("error")) is not None:
        return _v2_error(mapping(payload.get("error")) or {})
    raw_code = lookup(payload, "base_resp.status_code")
    code = as_int(raw_code)
    if code is None:
        if raw_code is None:
            raise refuse("missing status", NAME, field="base_resp.status_code")
        raise refuse("unknown status", NAME, field="base_resp.status_code", value=short(raw_code))
    if code != 0:
        return _failed(code, text(lookup(payload, "base_resp.status_msg")), "base_resp.status_code")
    if "status" in payload:
        return _query(payload)
    if lookup(payload, "data.status") is not None:
        return _stream(payload)
    if operation == "voice_clone" or any(key in payload for key in CLONE_KEYS):
        return _voice_clone(payload)
    job = job_id(payload, "task_id")
    if job is not None:  # a task's creation answer (long speech already has a file_id)
        return created(job, "base_resp.status_code=0, task_id")
    if operation == "lyrics" or any(key in payload for key in LYRICS_KEYS):
        found = find_output(payload, [Field("lyrics"), Field("data.lyrics")], operation="lyrics")
        return done("base_resp.status_code=0", found, "lyrics", None)
    if operation == "image" or _is_image_answer(payload):
        known = [Field("data.image_urls"), Field("data.image_base64")]
        found = find_output(payload, known, operation=operation)
        return done("base_resp.status_code=0", found, "data.image_urls|image_base64", None)
    found = find_output(payload, operation=operation)
    if found is not None:  # voice design, file retrieval
        return done("base_resp.status_code=0", found, "the answer", None)
    raise refuse("missing status", NAME, field="data.status")


def _is_image_answer(payload: Payload) -> bool:
    """An image generation answer: ``data.image_urls`` or ``data.image_base64`` (by
    ``response_format``), and ``metadata.success_count``."""
    data = mapping(payload.get("data")) or {}
    return "image_urls" in data or "image_base64" in data or lookup(payload, "metadata") is not None


def _failed(code: int, message: str, field: str) -> Classification:
    outcome = ERROR_CODES.get(code, Outcome.FAILED)
    if outcome is Outcome.FAILED and SENSITIVE_TEXT.search(message):
        outcome = Outcome.MODERATED
    return Classification(outcome, f"{field}={code} ({short(message, 40)})")


def _stream(payload: Payload) -> Classification:
    """Music and speech: ``data.status`` 1 (a chunk) or 2 (done)."""
    raw_status = lookup(payload, "data.status")
    status = as_int(raw_status)
    if status is None:
        raise refuse("unknown status", NAME, field="data.status", value=short(raw_status))
    outcome = status_in(STREAM_STATUS, status, NAME, "data.status")
    decided = f"base_resp.status_code=0, data.status={status}"
    if outcome is Outcome.SUCCEEDED:
        found = find_output(payload.get("data"), [Field("audio"), Field("audio_url")], at="data")
        return done(decided, found, "data.audio", None)
    return Classification(outcome, decided)


def _task_status(
    task: Payload, table: dict[str, Outcome], id_field: str, shown: str
) -> tuple[Outcome, str, str | None]:
    """A task's status word read with ``table``: the outcome, the reason, the job id."""
    status = require_status(task, "status", NAME)
    outcome = status_in(table, status, NAME, shown)
    return outcome, f"{shown}={status!r}", job_id(task, id_field)


def _query(payload: Payload) -> Classification:
    """Video and long-speech queries: a status word at the top, the file id beside it."""
    outcome, decided, job = _task_status(payload, QUERY_STATUS, "task_id", "status")
    if outcome is Outcome.SUCCEEDED:
        known = [Field("file_id"), Field("video_url"), Field("url")]
        found = find_output(payload, known, ids=QUERY_IDS)
        return done(decided, found, "file_id", job)
    if outcome is Outcome.FAILED:
        message = text(payload.get("error_message"))
        moderated = SENSITIVE_TEXT.search(message) is not None
        reason = f"{decided} ({short(message, 40)})" if message else decided
        return Classification(Outcome.MODERATED if moderated else outcome, reason, job)
    return Classification(outcome, decided, job)


def _v2_task(task: Payload) -> Classification:
    """Video v2: ``task.status``, the video at ``task.content.url``."""
    outcome, decided, job = _task_status(task, TASK_STATUS, "id", "task.status")
    if outcome is Outcome.SUCCEEDED:
        found = find_output(task.get("content"), [Field("url")], at="task.content")
        return done(decided, found, "task.content.url", job)
    if outcome is Outcome.FAILED:
        code = as_int(lookup(task, "error.code"))
        message = text(lookup(task, "error.message"))
        if code is not None:
            failed = _failed(code, message, "task.error.code")
            return Classification(failed.outcome, f"{decided}, {failed.reason}", job)
        return Classification(outcome, f"{decided} ({short(message or None, 40)})", job)
    return Classification(outcome, decided, job)


def _v2_error(error: Payload) -> Classification:
    """A v2 error body: the type says the kind, the message ends with the v1 code."""
    kind, message = text(error.get("type")), text(error.get("message"))
    trailing = TRAILING_CODE.search(message)
    if trailing is not None and int(trailing.group(1)) in ERROR_CODES:
        return _failed(int(trailing.group(1)), message, "error.message code")
    if not kind:
        raise refuse("missing status", NAME, field="error.type")
    outcome = ERROR_TYPES.get(kind, Outcome.FAILED)
    return Classification(outcome, f"error.type={kind!r} ({short(message, 40)})")


def _flagged(value: object) -> bool:
    """``input_sensitive``: ``true``, a non-zero type, or an object holding either."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, dict):
        return any(_flagged(item) for item in value.values())
    return False


def _voice_clone(payload: Payload) -> Classification:
    """Voice cloning: no status, no id echoed; the risk-control flags decide."""
    for key in ("input_sensitive", "input_sensitive_type"):
        if _flagged(payload.get(key)):
            return Classification(Outcome.MODERATED, f"base_resp.status_code=0, {key} set")
    found = find_output(payload, [Field("demo_audio")])
    reason = "base_resp.status_code=0: voice cloned under the requested voice_id"
    return Classification(Outcome.SUCCEEDED, f"{reason}{f', {found}' if found else ''}")


ADAPTER: Final = Adapter(NAME, _rules)
