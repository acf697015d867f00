"""Kling classifier cases beyond the shared fixtures: both API designs and submit codes."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.errors import Unclassifiable
from ledger.outcomes import Outcome
from providers.kling import ADAPTER

MP4 = "https://cdn.klingai.example/case/01.mp4"


def legacy(status: str, **extra: Any) -> dict[str, Any]:
    return {"task_id": "860000000000000099", "task_status": status, **extra}


def new(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "913827032734642299", "status": status, "message": "", **extra}


def envelope(task: dict[str, Any]) -> dict[str, Any]:
    return {"code": 0, "message": "SUCCEED", "request_id": "req-case", "data": task}


CASES: list[tuple[str, dict[str, Any], str | None, Outcome]] = [
    ("legacy-succeed-result-absent", legacy("succeed"), "video", Outcome.EMPTY_SUCCESS),
    (
        "legacy-succeed-null-placeholder-url",
        legacy("succeed", task_result={"videos": [{"url": "https://cdn.klingai.example/null"}]}),
        "video",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "legacy-succeed-watermark-only",
        legacy("succeed", task_result={"videos": [{"url": "", "watermark_url": MP4}]}),
        "video",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "legacy-succeed-second-video-good",
        legacy("succeed", task_result={"videos": [{"url": ""}, {"url": MP4}]}),
        "video",
        Outcome.SUCCEEDED,
    ),
    (
        "legacy-image-op-output-under-videos-still-counts",
        envelope(legacy("succeed", task_result={"videos": [{"url": MP4}]})),
        "image",
        Outcome.SUCCEEDED,
    ),
    (
        "legacy-only-the-input-video-echoed-in-task-info",
        legacy("succeed", task_info={"parent_video": {"url": MP4}}, task_result={"videos": []}),
        "video",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "legacy-failed-sensitive-english",
        legacy("failed", task_status_msg="Input contains sensitive content"),
        "video",
        Outcome.MODERATED,
    ),
    ("legacy-failed-msg-null", legacy("failed", task_status_msg=None), "video", Outcome.FAILED),
    (
        "new-succeeded-image-output-for-video-op-still-counts",
        new("succeeded", outputs=[{"type": "image", "url": MP4}]),
        "video",
        Outcome.SUCCEEDED,
    ),
    (
        "new-succeeded-voice-id-without-preview",
        new("succeeded", outputs=[{"type": "voice", "id": "829", "url": ""}]),
        "voice_clone",
        Outcome.SUCCEEDED,
    ),
    (
        "new-succeeded-element-by-its-id",
        new("succeeded", outputs=[{"type": "element", "id": "el-1", "materials": []}]),
        None,
        Outcome.SUCCEEDED,
    ),
    (
        "new-succeeded-element-materials-are-inputs",
        new("succeeded", outputs=[{"type": "element", "materials": [{"url": MP4}]}]),
        None,
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "new-succeeded-audio-mp3",
        new("succeeded", outputs=[{"type": "audio", "mp3_url": MP4}]),
        "music",
        Outcome.SUCCEEDED,
    ),
    (
        "new-succeeded-any-output-without-operation",
        new("succeeded", outputs=[{"type": "video", "url": MP4}]),
        None,
        Outcome.SUCCEEDED,
    ),
    ("new-succeeded-outputs-absent", new("succeeded"), "video", Outcome.EMPTY_SUCCESS),
    ("new-failed-plain", new("failed", message="Internal error"), "video", Outcome.FAILED),
    ("new-design-inside-envelope", envelope(new("processing")), "video", Outcome.PENDING),
    (
        "envelope-nonzero-code-but-task-status-wins",
        {
            "code": 5000,
            "message": "x",
            "data": legacy("succeed", task_result={"videos": [{"url": MP4}]}),
        },
        "video",
        Outcome.SUCCEEDED,
    ),
    (
        "submit-1102-resource-pack-depleted",
        {"code": 1102, "message": "depleted"},
        "video",
        Outcome.FAILED,
    ),
    ("submit-1302-rate-limited", {"code": 1302, "message": "too fast"}, "video", Outcome.PENDING),
    ("submit-5001-maintenance", {"code": 5001, "message": "unavailable"}, "video", Outcome.FAILED),
    (
        "submit-1300-strategy-risk-wording",
        {"code": 1300, "message": "Trigger the platform risk control"},
        "video",
        Outcome.MODERATED,
    ),
    (
        "submit-code-as-string",
        {"code": "1301", "message": "content security"},
        "video",
        Outcome.MODERATED,
    ),
]


@pytest.mark.parametrize(
    ("payload", "operation", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_case(payload: dict[str, Any], operation: str | None, expected: Outcome) -> None:
    result = ADAPTER.classify(payload, operation)
    assert result.outcome is expected, result.reason


def test_job_ids() -> None:
    assert ADAPTER.classify(envelope(legacy("submitted"))).provider_job_id == "860000000000000099"
    assert ADAPTER.classify(new("processing")).provider_job_id == "913827032734642299"
    assert ADAPTER.classify({"code": 1303, "message": "busy"}).provider_job_id is None


def test_envelope_message_is_not_the_outcome() -> None:
    result = ADAPTER.classify(envelope(legacy("failed", task_status_msg="Image pixel is invalid")))
    assert result.outcome is Outcome.FAILED
    assert "data.task_status='failed'" in result.reason


REFUSED: list[tuple[str, Any, str]] = [
    ("unknown-legacy-status", legacy("canceled"), "task_status"),
    ("unknown-new-status", new("SUCCEEDED"), "status"),
    ("new-missing-status", {"id": "1", "outputs": []}, "status"),
    ("legacy-missing-status", {"task_id": "1", "task_result": {}}, "task_status"),
    ("envelope-without-task", {"code": 0, "message": "SUCCEED", "data": None}, "data.task_status"),
    ("undocumented-code", {"code": 9999, "message": "?"}, "code"),
    ("code-not-a-number", {"code": "abc", "message": "?"}, "code"),
    ("status-is-a-list", new("x") | {"status": ["succeeded"]}, "status"),
]


@pytest.mark.parametrize(
    ("payload", "field"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_refused(payload: Any, field: str) -> None:
    with pytest.raises(Unclassifiable) as caught:
        ADAPTER.classify(payload, "video")
    assert caught.value.fields["provider"] == "kling"
    assert caught.value.fields["field"] == field


@pytest.mark.parametrize("payload", [[], "succeed", None], ids=["list", "str", "none"])
def test_non_object_payload_is_refused(payload: Any) -> None:
    with pytest.raises(Unclassifiable):
        ADAPTER.classify(payload)
