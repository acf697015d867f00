"""What counts as a delivered result, by kind (found by a fresh tester after issue 9).

1. Deliverables the output rule did not know: an id documented as the whole output of a
   voice operation, inline media under every key a provider documents for it, and text as
   the deliverable of a text operation (lyrics), each only where its operation makes it one.
3. Partial results and removed outputs: a result the customer received (at least one
   unflagged image; an output removed after the retention window) is success, never refunded.
5. The reason describes the payload as it is.
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger.outcomes import Outcome
from providers.registry import classify

OK = {"status_code": 0, "status_msg": "success"}
B64 = "SUQzBAAAAAAAI1RTU0UAAAAPAAADTGF2ZjYw"
IMAGE = {"url": "https://v3.fal.media/files/field/a.jpg", "content_type": "image/jpeg"}
IMAGE_B = {"url": "https://v3.fal.media/files/field/b.jpg", "content_type": "image/jpeg"}

Case = tuple[str, str, str | None, dict[str, Any], str]

DELIVERED: list[Case] = [
    (
        "fal-voice-id-in-webhook",
        "fal",
        "voice_clone",
        {"request_id": "r", "status": "OK", "payload": {"voice_id": "8298778"}, "error": None},
        "payload.voice_id",
    ),
    ("fal-voice-id-result-body", "fal", "voice_clone", {"voice_id": "8298778"}, "voice_id"),
    (
        "suno-voice-id",
        "suno",
        "voice_clone",
        {
            "code": 200,
            "msg": "success",
            "data": {"taskId": "t", "voiceId": "v", "status": "success"},
        },
        "data.voiceId",
    ),
    (
        "elevenlabs-generated-voice-id",
        "elevenlabs",
        "voice_clone",
        {"previews": [{"generated_voice_id": "g1", "media_type": "audio/mpeg"}], "text": "hi"},
        "previews[0].generated_voice_id",
    ),
    (
        "elevenlabs-audio-base-64",
        "elevenlabs",
        "voice_clone",
        {"previews": [{"audio_base_64": B64, "media_type": "audio/mpeg"}], "text": "hi"},
        "previews[0].audio_base_64",
    ),
    (
        "minimax-image-base64-list-unpadded",
        "minimax",
        "image",
        {
            "data": {"image_base64": ["/9j/4AAQSkZJRgABAQAAAQABAAD/2w"]},
            "metadata": {"success_count": "1", "failed_count": "0"},
            "id": "img",
            "base_resp": OK,
        },
        "data.image_base64[0]",
    ),
    (
        "replicate-language-model-token-list",
        "replicate",
        "lyrics",
        {"id": "p", "status": "succeeded", "output": ["[Verse]\n", "Harbor", " lights"]},
        "output",
    ),
    (
        "replicate-plain-string",
        "replicate",
        "lyrics",
        {"id": "p", "status": "succeeded", "output": "[Verse]\nHarbor lights"},
        "output",
    ),
    (
        "minimax-lyrics-generation",
        "minimax",
        "lyrics",
        {"song_title": "T", "style_tags": "folk", "lyrics": "[Verse]\nla", "base_resp": OK},
        "lyrics",
    ),
    (
        "minimax-lyrics-generation-without-operation",
        "minimax",
        None,
        {"song_title": "T", "style_tags": "folk", "lyrics": "[Verse]\nla", "base_resp": OK},
        "lyrics",
    ),
]


@pytest.mark.parametrize(
    ("provider", "operation", "payload", "where"),
    [case[1:] for case in DELIVERED],
    ids=[case[0] for case in DELIVERED],
)
def test_deliverables_the_output_rule_did_not_know_are_output(
    provider: str, operation: str | None, payload: dict[str, Any], where: str
) -> None:
    result = classify(provider, payload, operation)
    assert result.outcome is Outcome.SUCCEEDED, result.reason
    assert where in result.reason


NOT_DELIVERED: list[Case] = [
    (
        "replicate-text-is-not-music",
        "replicate",
        "music",
        {"id": "p", "status": "succeeded", "output": "I could not make a song"},
        "output",
    ),
    (
        "replicate-blank-token-list",
        "replicate",
        "lyrics",
        {"id": "p", "status": "succeeded", "output": ["", " ", "\n"]},
        "output",
    ),
    (
        "minimax-lyrics-empty",
        "minimax",
        "lyrics",
        {"song_title": "T", "style_tags": "folk", "lyrics": "", "base_resp": OK},
        "lyrics",
    ),
    (
        "minimax-image-none",
        "minimax",
        "image",
        {"data": {"image_urls": []}, "metadata": {"success_count": 0}, "base_resp": OK},
        "image",
    ),
    (
        "fal-voice-id-is-not-speech",
        "fal",
        "speech",
        {"request_id": "r", "status": "OK", "payload": {"voice_id": "v1"}},
        "payload",
    ),
    (
        "elevenlabs-previews-empty",
        "elevenlabs",
        "voice_clone",
        {"previews": [], "text": "hi"},
        "previews",
    ),
]


@pytest.mark.parametrize(
    ("provider", "operation", "payload", "where"),
    [case[1:] for case in NOT_DELIVERED],
    ids=[case[0] for case in NOT_DELIVERED],
)
def test_deliverables_count_only_for_their_own_operation(
    provider: str, operation: str | None, payload: dict[str, Any], where: str
) -> None:
    result = classify(provider, payload, operation)
    assert result.outcome is Outcome.EMPTY_SUCCESS, result.reason
    assert where in result.reason


def _fal_images(flags: object, *images: dict[str, Any]) -> dict[str, Any]:
    body = {"images": list(images), "has_nsfw_concepts": flags, "seed": 1}
    return {"request_id": "r", "status": "OK", "payload": body, "error": None}


PARTIAL: list[tuple[str, str, str | None, dict[str, Any], Outcome, str]] = [
    (
        "fal-one-of-two-images-flagged",
        "fal",
        "image",
        _fal_images([False, True], IMAGE, IMAGE_B),
        Outcome.SUCCEEDED,
        "payload.images[0]",
    ),
    (
        "fal-first-flagged-second-clean",
        "fal",
        "image",
        _fal_images([True, False], IMAGE, IMAGE_B),
        Outcome.SUCCEEDED,
        "payload.images[1]",
    ),
    (
        "fal-every-image-flagged",
        "fal",
        "image",
        _fal_images([True, True], IMAGE, IMAGE_B),
        Outcome.MODERATED,
        "has_nsfw_concepts",
    ),
    (
        "fal-whole-output-flagged",
        "fal",
        "video",
        {"status": "OK", "payload": {"video": {"url": IMAGE["url"]}, "has_nsfw_concepts": True}},
        Outcome.MODERATED,
        "has_nsfw_concepts",
    ),
    (
        "fal-clean-image-without-url",
        "fal",
        "image",
        _fal_images([False, True], {"url": ""}, IMAGE_B),
        Outcome.MODERATED,
        "has_nsfw_concepts",
    ),
    (
        "replicate-output-removed-after-retention",
        "replicate",
        "music",
        {"id": "p", "status": "succeeded", "output": None, "data_removed": True},
        Outcome.SUCCEEDED,
        "data_removed",
    ),
    (
        "replicate-null-output-not-removed",
        "replicate",
        "music",
        {"id": "p", "status": "succeeded", "output": None, "data_removed": False},
        Outcome.EMPTY_SUCCESS,
        "output",
    ),
]


@pytest.mark.parametrize(
    ("provider", "operation", "payload", "expected", "where"),
    [case[1:] for case in PARTIAL],
    ids=[case[0] for case in PARTIAL],
)
def test_partial_results_and_removed_outputs_the_customer_received_are_success(
    provider: str, operation: str | None, payload: dict[str, Any], expected: Outcome, where: str
) -> None:
    result = classify(provider, payload, operation)
    assert result.outcome is expected, result.reason
    assert where in result.reason


@pytest.mark.parametrize(
    ("payload", "shown"),
    [([1], "a list"), ("oops", "a string"), (None, "null")],
    ids=["list", "string", "null"],
)
def test_reason_text_describes_the_payload_as_it_is(payload: object, shown: str) -> None:
    body = {"request_id": "r", "status": "OK", "payload": payload, "error": None}
    result = classify("fal", body, "image")
    assert result.outcome is Outcome.EMPTY_SUCCESS, result.reason
    assert f"payload is {shown}" in result.reason
    if payload is not None:
        assert "null" not in result.reason
