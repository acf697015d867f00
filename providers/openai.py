"""OpenAI Sora 2 Videos API: video objects, webhook events and create-time error bodies.

Shapes (openai-python ``types/video.py``, ``video_create_error.py``; video generation guide):

- video object, ``GET /v1/videos/{id}``: ``id``, ``status`` queued | in_progress | completed |
  failed, ``error {code, message}`` when failed. There is no cancel status. A completed video
  counts as succeeded: its file is not in the object but downloaded from ``/content``;
- webhook event: ``{"object": "event", "type": "video.completed" | "video.failed",
  "data": {"id"}}``. It carries no error, so a ``video.failed`` event is ``failed`` until the
  video object, fetched again, says whether moderation blocked it;
- request error: ``{"error": {"message", "type", "param", "code"}}`` with no job behind it.

No enum of error codes is published; ``moderation_blocked`` (the job failed) and
``sentinel_block`` (request-time check) are the codes observed for moderation.
"""

from __future__ import annotations

import re
from typing import Final

from ledger.outcomes import Outcome
from providers.base import Classification
from providers.common import (
    Adapter,
    Payload,
    job_id,
    mapping,
    require_status,
    short,
    status_in,
    text,
)

__all__ = ["ADAPTER", "NAME"]

NAME: Final = "openai"

STATUS: Final[dict[str, Outcome]] = {
    "queued": Outcome.PENDING,
    "in_progress": Outcome.PENDING,
    "completed": Outcome.SUCCEEDED,  # the file is downloaded separately from /content
    "failed": Outcome.FAILED,  # moderated when error.code says so
}

EVENTS: Final[dict[str, Outcome]] = {
    "video.completed": Outcome.SUCCEEDED,
    "video.failed": Outcome.FAILED,  # the event has no error: fetch the video for the code
}

MODERATION_CODES: Final = frozenset({"moderation_blocked", "sentinel_block"})
MODERATION_TEXT: Final = re.compile(r"moderation system|safety system", re.IGNORECASE)
RATE_LIMIT_CODES: Final = frozenset({"rate_limit_exceeded", "slow_down"})
"""Request errors refused before any job existed: retry the create (``insufficient_quota``
and the other 429 codes are billing failures, not rate limits)."""


def _rules(payload: Payload, operation: str | None) -> Classification:
    if payload.get("object") == "event":
        return _event(payload)
    error = mapping(payload.get("error"))
    if error is not None and "status" not in payload:
        return _request_error(error)
    job = job_id(payload, "id")
    status = require_status(payload, "status", NAME)
    outcome = status_in(STATUS, status, NAME, "status")
    if outcome is Outcome.FAILED:
        return _failed(error or {}, f"status={status!r}", job)
    return Classification(outcome, f"status={status!r}", job)


def _failed(error: Payload, decided: str, job: str | None) -> Classification:
    code, message = text(error.get("code")), text(error.get("message"))
    moderated = code in MODERATION_CODES or MODERATION_TEXT.search(message) is not None
    outcome = Outcome.MODERATED if moderated else Outcome.FAILED
    return Classification(outcome, f"{decided}, error.code={short(code or None)}", job)


def _request_error(error: Payload) -> Classification:
    """A create (or fetch) refused with ``{"error": {…}}``: no job was started."""
    code = text(error.get("code"))
    if code in RATE_LIMIT_CODES:
        return Classification(Outcome.PENDING, f"error.code={code!r}: retry the create")
    return _failed(error, "request error", None)


def _event(payload: Payload) -> Classification:
    event = require_status(payload, "type", NAME)
    outcome = status_in(EVENTS, event, NAME, "type")
    return Classification(outcome, f"event type={event!r}", job_id(payload, "data.id"))


ADAPTER: Final = Adapter(NAME, _rules)
