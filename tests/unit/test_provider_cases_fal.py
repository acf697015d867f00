"""fal classifier cases beyond the shared fixtures, derived from fal's documented fields."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.errors import Unclassifiable
from ledger.outcomes import Outcome
from providers.fal import ADAPTER

RID = "0a1b2c3d-0000-4000-8000-0000000000aa"
VIDEO = {"url": "https://v3.fal.media/files/case/out.mp4", "content_type": "video/mp4"}


def webhook_ok(output: Any) -> dict[str, Any]:
    return {"request_id": RID, "status": "OK", "payload": output, "error": None}


CASES: list[tuple[str, dict[str, Any], str | None, Outcome]] = [
    (
        "completed-clean-awaits-result",
        {"request_id": RID, "status": "COMPLETED"},
        "video",
        Outcome.PENDING,
    ),
    (
        "completed-runner-disconnected",
        {
            "status": "COMPLETED",
            "error": "Runner disconnected",
            "error_type": "runner_disconnected",
        },
        "video",
        Outcome.FAILED,
    ),
    (
        "completed-error-text-only",
        {"status": "COMPLETED", "error": "Generation failed"},
        "video",
        Outcome.FAILED,
    ),
    (
        "completed-content-policy-text",
        {"status": "COMPLETED", "error": "Blocked by content policy"},
        "image",
        Outcome.MODERATED,
    ),
    (
        "webhook-error-without-detail",
        {"status": "ERROR", "error": None, "payload": None},
        "video",
        Outcome.FAILED,
    ),
    (
        "webhook-error-string-detail",
        {"status": "ERROR", "error": "Invalid status code: 500", "payload": {"detail": "boom"}},
        "video",
        Outcome.FAILED,
    ),
    (
        "webhook-error-mixed-detail-policy-wins",
        {
            "status": "ERROR",
            "payload": {
                "detail": [
                    {"type": "image_too_small", "msg": "small"},
                    {"type": "content_policy_violation"},
                ]
            },
        },
        "image",
        Outcome.MODERATED,
    ),
    (
        "webhook-error-client-cancelled",
        {"status": "ERROR", "payload": {"detail": "cancelled", "error_type": "client_cancelled"}},
        "video",
        Outcome.CANCELLED,
    ),
    (
        "ok-video-none-placeholder-url",
        webhook_ok({"video": {"url": "https://v3.fal.media/files/x/None.mp4"}}),
        "video",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "ok-video-not-http",
        webhook_ok({"video": {"url": "ftp://v3.fal.media/out.mp4"}}),
        "video",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "ok-video-url-as-string",
        webhook_ok({"video": "https://v3.fal.media/out.mp4"}),
        "video",
        Outcome.SUCCEEDED,
    ),
    (
        "ok-images-first-empty-second-good",
        webhook_ok({"images": [{"url": ""}, {"url": "https://v3.fal.media/b.png"}]}),
        "image",
        Outcome.SUCCEEDED,
    ),
    (
        "ok-video-asked-but-image-elsewhere-counts",
        webhook_ok({"images": [{"url": "https://v3.fal.media/b.png"}]}),
        "video",
        Outcome.SUCCEEDED,
    ),
    (
        "ok-only-api-links-and-config",
        webhook_ok(
            {
                "response_url": "https://queue.fal.run/fal-ai/x/requests/1",
                "config_file": {"url": "https://v3.fal.media/config.json"},
            }
        ),
        "training",
        Outcome.EMPTY_SUCCESS,
    ),
    ("ok-no-artifact-field-at-all", webhook_ok({"seed": 7}), "image", Outcome.EMPTY_SUCCESS),
    ("ok-payload-key-absent", {"request_id": RID, "status": "OK"}, "video", Outcome.EMPTY_SUCCESS),
    (
        "ok-nsfw-flag-bool",
        webhook_ok({"images": [VIDEO], "has_nsfw_concepts": True}),
        "image",
        Outcome.MODERATED,
    ),
    (
        "ok-training-with-lora",
        webhook_ok({"diffusers_lora_file": {"url": "https://v3.fal.media/lora.safetensors"}}),
        "training",
        Outcome.SUCCEEDED,
    ),
    (
        "ok-music-audio-file",
        webhook_ok({"audio": {"url": "https://v3.fal.media/a.wav"}}),
        "music",
        Outcome.SUCCEEDED,
    ),
    (
        "ok-unknown-operation-any-output",
        webhook_ok({"video": VIDEO}),
        "voice_clone",
        Outcome.SUCCEEDED,
    ),
    ("result-body-video", {"video": VIDEO}, "video", Outcome.SUCCEEDED),
    ("result-body-file-under-unlisted-key", {"model_mesh": VIDEO}, "image", Outcome.SUCCEEDED),
    ("result-body-images-empty", {"images": [], "seed": 1}, None, Outcome.EMPTY_SUCCESS),
    (
        "result-body-string-policy-detail",
        {"detail": "content_policy_violation"},
        "image",
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


def test_job_id_is_request_id_then_gateway_id() -> None:
    assert ADAPTER.classify({"status": "IN_QUEUE", "request_id": RID}).provider_job_id == RID
    gateway = {"status": "IN_QUEUE", "gateway_request_id": "gw-1"}
    assert ADAPTER.classify(gateway).provider_job_id == "gw-1"


def test_reason_names_the_deciding_field() -> None:
    result = ADAPTER.classify(webhook_ok({"video": None}), "video")
    assert "status='OK'" in result.reason
    assert "payload.video" in result.reason


REFUSED: list[tuple[str, Any, str]] = [
    ("unknown-status", {"status": "FAILED"}, "status"),
    ("lowercase-status", {"status": "ok", "payload": {"video": VIDEO}}, "status"),
    ("status-null", {"status": None, "request_id": RID}, "status"),
    ("status-not-string", {"status": 3}, "status"),
    ("no-status-no-output", {"request_id": RID, "logs": []}, "status"),
    ("empty-detail-list", {"detail": []}, "status"),
    ("bare-url-is-not-a-result-body", {"request_id": RID, "note": VIDEO["url"]}, "status"),
]


@pytest.mark.parametrize(
    ("payload", "field"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_refused(payload: Any, field: str) -> None:
    with pytest.raises(Unclassifiable) as caught:
        ADAPTER.classify(payload, "video")
    assert caught.value.fields["provider"] == "fal"
    assert caught.value.fields["field"] == field


@pytest.mark.parametrize("payload", [[], "OK", None, 42], ids=["list", "str", "none", "int"])
def test_non_object_payload_is_refused(payload: Any) -> None:
    with pytest.raises(Unclassifiable):
        ADAPTER.classify(payload)
