"""OpenAI (Sora 2 Videos API) cases beyond the shared fixtures."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.errors import Unclassifiable
from ledger.outcomes import Outcome
from providers.openai import ADAPTER


def video(status: Any, error: Any = None) -> dict[str, Any]:
    return {"id": "video_case", "object": "video", "status": status, "error": error}


def event(kind: Any) -> dict[str, Any]:
    return {"id": "evt_case", "object": "event", "type": kind, "data": {"id": "video_case"}}


def request_error(code: Any, message: str = "") -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


CASES: list[tuple[str, dict[str, Any], Outcome]] = [
    ("completed", video("completed"), Outcome.SUCCEEDED),
    ("failed-error-null", video("failed"), Outcome.FAILED),
    (
        "failed-sentinel-block",
        video("failed", {"code": "sentinel_block", "message": "x"}),
        Outcome.MODERATED,
    ),
    (
        "failed-moderation-by-message",
        video(
            "failed",
            {"code": None, "message": "Your request was blocked by our moderation system."},
        ),
        Outcome.MODERATED,
    ),
    (
        "failed-safety-system-message",
        video("failed", {"code": "x", "message": "Rejected by our safety system"}),
        Outcome.MODERATED,
    ),
    ("create-rate-limited", request_error("rate_limit_exceeded"), Outcome.PENDING),
    ("create-insufficient-quota", request_error("insufficient_quota"), Outcome.FAILED),
    (
        "create-moderation-message",
        request_error(None, "blocked by our moderation system"),
        Outcome.MODERATED,
    ),
    ("webhook-video-completed", event("video.completed"), Outcome.SUCCEEDED),
    ("webhook-video-failed", event("video.failed"), Outcome.FAILED),
]


@pytest.mark.parametrize(("payload", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_case(payload: dict[str, Any], expected: Outcome) -> None:
    result = ADAPTER.classify(payload, "video")
    assert result.outcome is expected, result.reason


def test_job_ids() -> None:
    assert ADAPTER.classify(video("queued")).provider_job_id == "video_case"
    assert ADAPTER.classify(event("video.completed")).provider_job_id == "video_case"
    assert ADAPTER.classify(request_error("invalid_value")).provider_job_id is None


REFUSED: list[tuple[str, Any, str]] = [
    ("cancelled-is-not-a-sora-status", video("cancelled"), "status"),
    ("expired-is-not-a-video-status", video("expired"), "status"),
    ("capitalised-status", video("Completed"), "status"),
    ("missing-status", {"id": "video_case", "object": "video"}, "status"),
    ("error-as-plain-string", {"error": "boom"}, "status"),
    ("unknown-event", event("video.created"), "type"),
    ("event-without-type", event(None), "type"),
]


@pytest.mark.parametrize(
    ("payload", "field"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_refused(payload: Any, field: str) -> None:
    with pytest.raises(Unclassifiable) as caught:
        ADAPTER.classify(payload, "video")
    assert caught.value.fields["provider"] == "openai"
    assert caught.value.fields["field"] == field
