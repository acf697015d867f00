"""The three kinds of fault that real provider traffic showed, each fixed as a kind.

1. Inline results (``data:`` URIs) are output, for every provider whose payloads carry
   output; a ``data:`` URI with nothing after the comma is empty.
2. An output under a key that the operation's list does not name is still output; the
   request's inputs and the API's own links never are.
3. A documented status in another place or of another type (a word at the top instead of a
   nested number, a numeric legend, a per-model map) is classified, and a status that no
   document lists is still refused, naming its field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ledger.errors import Unclassifiable
from ledger.outcomes import Outcome
from providers.registry import PROVIDER_NAMES, classify

DATA_URI = "data:audio/wav;base64,UklGRiQAAABXQVZFZm10IBAAAAABAAEA"
EMPTY_DATA_URI = "data:audio/wav;base64,"
URL = "https://cdn.field.example/out/result.bin"
OK = {"status_code": 0, "status_msg": "success"}

Build = Callable[[Any], dict[str, Any]]

OUTPUT_SPOTS: dict[str, tuple[str, Build]] = {
    "fal": ("video", lambda v: {"status": "OK", "payload": {"video": {"url": v}}}),
    "kling": (
        "video",
        lambda v: {
            "task_id": "1",
            "task_status": "succeed",
            "task_result": {"videos": [{"url": v}]},
        },
    ),
    "suno": (
        "music",
        lambda v: {"code": 200, "data": {"callbackType": "complete", "data": [{"audio_url": v}]}},
    ),
    "minimax": ("music", lambda v: {"data": {"status": 2, "audio": v}, "base_resp": OK}),
    "replicate": ("music", lambda v: {"id": "p1", "status": "succeeded", "output": v}),
    "elevenlabs": ("music", lambda v: {"audio_base64": v}),
}
"""Where each provider puts the output of a finished job, filled with a given value."""

NO_OUTPUT_IN_BODY = {"openai"}
"""Sora's video object never carries the file: ``completed`` is success, the file is fetched
from ``/videos/{id}/content``."""


def test_every_provider_is_covered_by_the_output_spots() -> None:
    assert set(OUTPUT_SPOTS) | NO_OUTPUT_IN_BODY == set(PROVIDER_NAMES)


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_inline_data_uri_outputs_are_output_for_every_provider(provider: str) -> None:
    if provider in NO_OUTPUT_IN_BODY:
        completed = {"id": "video_1", "object": "video", "status": "completed"}
        assert classify(provider, completed, "video").outcome is Outcome.SUCCEEDED
        return
    operation, build = OUTPUT_SPOTS[provider]
    result = classify(provider, build(DATA_URI), operation)
    assert result.outcome is Outcome.SUCCEEDED, result.reason
    assert "data URI" in result.reason
    empty = classify(provider, build(EMPTY_DATA_URI), operation)
    assert empty.outcome is Outcome.EMPTY_SUCCESS, empty.reason


UNLISTED: dict[str, tuple[str, dict[str, Any], str]] = {
    "fal": ("image", {"status": "OK", "payload": {"model_mesh": {"url": URL}}}, "model_mesh"),
    "kling": (
        "video",
        {"task_id": "1", "task_status": "succeed", "task_result": {"audios": [{"url_mp3": URL}]}},
        "url_mp3",
    ),
    "suno": ("music", {"code": 200, "data": {"task_id": "t", "video_url": URL}}, "video_url"),
    "minimax": (
        "music",
        {"data": {"status": 2, "audio": "", "song_file": {"url": URL}}, "base_resp": OK},
        "song_file",
    ),
    "replicate": ("music", {"id": "p", "status": "succeeded", "output": {"wav": URL}}, "wav"),
    "elevenlabs": ("music", {"audio_base64": "", "audio_url": URL}, "audio_url"),
    "openai": ("video", {"id": "v", "object": "video", "status": "completed"}, ""),
}
"""A finished job whose output sits under a key the operation's own list does not name."""

INPUTS_AND_LINKS_ONLY: dict[str, tuple[str, dict[str, Any]]] = {
    "fal": (
        "image",
        {
            "status": "OK",
            "payload": {"response_url": URL, "prompt": URL, "images": []},
        },
    ),
    "kling": (
        "video",
        {
            "task_id": "1",
            "task_status": "succeed",
            "task_info": {"parent_video": {"url": URL}},
            "task_result": {"videos": [{"url": "", "watermark_url": URL}]},
        },
    ),
    "suno": (
        "music",
        {
            "code": 200,
            "data": {
                "callbackType": "complete",
                "callbackUrl": URL,
                "data": [{"audio_url": "", "stream_audio_url": URL, "image_url": URL}],
            },
        },
    ),
    "minimax": ("speech", {"data": {"status": 2, "subtitle_file": URL}, "base_resp": OK}),
    "replicate": (
        "image",
        {
            "id": "p",
            "status": "succeeded",
            "input": {"image": URL},
            "output": None,
            "urls": {"get": URL, "cancel": URL, "stream": URL},
        },
    ),
    "elevenlabs": ("voice_clone", {"voice_id": "", "requires_verification": False}),
}
"""Finished jobs whose only URLs are inputs, API links or companions: no output anywhere."""


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_output_under_an_unlisted_key_is_output_for_every_provider(provider: str) -> None:
    operation, payload, key = UNLISTED[provider]
    result = classify(provider, payload, operation)
    assert result.outcome is Outcome.SUCCEEDED, result.reason
    assert key in result.reason
    if provider in NO_OUTPUT_IN_BODY:
        return
    operation, payload = INPUTS_AND_LINKS_ONLY[provider]
    empty = classify(provider, payload, operation)
    assert empty.outcome is Outcome.EMPTY_SUCCESS, empty.reason


DOCUMENTED_ELSEWHERE: list[tuple[str, str, str | None, dict[str, Any], Outcome]] = [
    ("fal-cancel-requested", "fal", "video", {"status": "CANCELLATION_REQUESTED"}, Outcome.PENDING),
    (
        "kling-code-as-string",
        "kling",
        "video",
        {"code": "1303", "message": "busy"},
        Outcome.PENDING,
    ),
    (
        "kling-new-design-in-envelope",
        "kling",
        "video",
        {"code": 0, "data": {"id": "1", "status": "failed", "message": "risk control"}},
        Outcome.MODERATED,
    ),
    (
        "suno-numeric-flag-cover",
        "suno",
        "image",
        {"code": 200, "data": {"successFlag": 2}},
        Outcome.PENDING,
    ),
    (
        "suno-numeric-flag-midi-as-digit-string",
        "suno",
        "midi_export",
        {"code": 200, "data": {"successFlag": "2"}},
        Outcome.FAILED,
    ),
    (
        "suno-numeric-flag-both-legends-agree",
        "suno",
        None,
        {"code": 200, "data": {"successFlag": 3}},
        Outcome.FAILED,
    ),
    *[
        (f"minimax-query-{word}", "minimax", "video", {"status": word, "base_resp": OK}, outcome)
        for word, outcome in [
            ("Preparing", Outcome.PENDING),
            ("Queueing", Outcome.PENDING),
            ("Processing", Outcome.PENDING),
            ("Fail", Outcome.FAILED),
            ("Failed", Outcome.FAILED),
            ("Expired", Outcome.FAILED),
        ]
    ],
    (
        "minimax-query-success-file-id-number",
        "minimax",
        "speech",
        {"status": "Success", "file_id": 95157322514496, "base_resp": OK},
        Outcome.SUCCEEDED,
    ),
    ("minimax-v2-running", "minimax", "video", {"task": {"status": "running"}}, Outcome.PENDING),
    (
        "minimax-v2-cancelled",
        "minimax",
        "video",
        {"task": {"status": "cancelled"}},
        Outcome.CANCELLED,
    ),
    (
        "minimax-v2-error-body",
        "minimax",
        "video",
        {"type": "error", "error": {"type": "rate_limit_error", "message": "retry (1002)"}},
        Outcome.PENDING,
    ),
    (
        "replicate-training-aborted",
        "replicate",
        "training",
        {"id": "t", "status": "aborted"},
        Outcome.CANCELLED,
    ),
    (
        "elevenlabs-fine-tuning-map",
        "elevenlabs",
        "voice_clone",
        {
            "voice_id": "v1",
            "category": "professional",
            "fine_tuning": {"state": {"eleven_v2": "delayed", "eleven_v3": "fine_tuned"}},
        },
        Outcome.SUCCEEDED,
    ),
    (
        "openai-event-type",
        "openai",
        "video",
        {"object": "event", "type": "video.completed", "data": {"id": "v"}},
        Outcome.SUCCEEDED,
    ),
]


def test_every_provider_has_a_status_documented_elsewhere() -> None:
    assert {case[1] for case in DOCUMENTED_ELSEWHERE} == set(PROVIDER_NAMES)


@pytest.mark.parametrize(
    ("provider", "operation", "payload", "expected"),
    [case[1:] for case in DOCUMENTED_ELSEWHERE],
    ids=[case[0] for case in DOCUMENTED_ELSEWHERE],
)
def test_documented_status_in_another_place_or_type_is_classified_for_every_provider(
    provider: str, operation: str | None, payload: dict[str, Any], expected: Outcome
) -> None:
    result = classify(provider, payload, operation)
    assert result.outcome is expected, result.reason


UNDOCUMENTED: list[tuple[str, str | None, dict[str, Any], str]] = [
    ("suno", None, {"code": 200, "data": {"successFlag": 2}}, "data.successFlag"),
    ("suno", "image", {"code": 200, "data": {"successFlag": 7}}, "data.successFlag"),
    ("minimax", "video", {"status": "Unknown", "base_resp": OK}, "status"),
    ("minimax", "video", {"task": {"status": "paused"}}, "task.status"),
    ("minimax", "video", {"type": "error", "error": {"message": "?"}}, "error.type"),
    (
        "elevenlabs",
        "voice_clone",
        {"category": "professional", "fine_tuning": {"state": {"m": "paused"}}},
        "fine_tuning.state.m",
    ),
    ("kling", "video", {"code": 1105, "message": "?"}, "code"),
    ("fal", "video", {"status": "ALREADY_DONE"}, "status"),
]


@pytest.mark.parametrize(
    ("provider", "operation", "payload", "field"),
    UNDOCUMENTED,
    ids=[f"{c[0]}-{c[3]}" for c in UNDOCUMENTED],
)
def test_undocumented_status_is_still_refused_naming_its_field(
    provider: str, operation: str | None, payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(Unclassifiable) as refused:
        classify(provider, payload, operation)
    assert refused.value.fields["provider"] == provider
    assert refused.value.fields["field"] == field
