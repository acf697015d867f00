"""ElevenLabs cases beyond the shared fixtures: synchronous results and ``detail`` errors."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.errors import Unclassifiable
from ledger.outcomes import Outcome
from providers.elevenlabs import ADAPTER


def error(status: Any, **data: Any) -> dict[str, Any]:
    return {"detail": {"status": status, "message": "case", **({"data": data} if data else {})}}


CASES: list[tuple[str, dict[str, Any], str | None, Outcome]] = [
    (
        "clone-voice-id-empty",
        {"voice_id": "", "requires_verification": False},
        "voice_clone",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "clone-voice-id-absent",
        {"requires_verification": False},
        "voice_clone",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "clone-needs-verification",
        {"voice_id": "v1", "requires_verification": True},
        "voice_clone",
        Outcome.SUCCEEDED,
    ),
    ("music-inline-audio", {"audio_base64": "SUQzBAAAAAAA"}, "music", Outcome.SUCCEEDED),
    ("music-inline-audio-empty", {"audio_base64": ""}, "music", Outcome.EMPTY_SUCCESS),
    ("any-result-without-operation", {"voice_id": "v1"}, None, Outcome.SUCCEEDED),
    (
        "inline-audio-for-clone-is-still-output",
        {"audio_base64": "SUQz"},
        "voice_clone",
        Outcome.SUCCEEDED,
    ),
    ("inline-audio-placeholder", {"audio_base64": "None"}, "music", Outcome.EMPTY_SUCCESS),
    ("busy-before-generation", error("system_busy"), "music", Outcome.PENDING),
    ("too-many-concurrent", error("too_many_concurrent_requests"), "music", Outcome.PENDING),
    (
        "unknown-status-with-prompt-suggestion",
        error("prompt_rejected", prompt_suggestion="x"),
        "music",
        Outcome.MODERATED,
    ),
    ("unknown-error-status-is-failed", error("voice_not_found"), "music", Outcome.FAILED),
    (
        "validation-detail-list",
        {"detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "missing"}]},
        "music",
        Outcome.FAILED,
    ),
    ("detail-string", {"detail": "Internal server error"}, "music", Outcome.FAILED),
]


@pytest.mark.parametrize(
    ("payload", "operation", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_case(payload: dict[str, Any], operation: str | None, expected: Outcome) -> None:
    result = ADAPTER.classify(payload, operation)
    assert result.outcome is expected, result.reason


REFUSED: list[tuple[str, Any, str | None]] = [
    ("empty-object", {}, "music"),
    ("unrelated-object", {"foo": 1}, None),
    ("detail-object-without-status", {"detail": {"message": "?"}}, "music"),
    ("detail-null", {"detail": None}, "music"),
]


@pytest.mark.parametrize(
    ("payload", "operation"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_refused(payload: Any, operation: str | None) -> None:
    with pytest.raises(Unclassifiable) as caught:
        ADAPTER.classify(payload, operation)
    assert caught.value.fields == {"provider": "elevenlabs", "field": "detail.status"}
