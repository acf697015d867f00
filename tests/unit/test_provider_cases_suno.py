"""Suno-style API cases beyond the shared fixtures: each operation's own notion of output."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.errors import Unclassifiable
from ledger.outcomes import Outcome
from providers.suno import ADAPTER

MP3 = "https://musicfile.example/case.mp3"


def callback(kind: str, tracks: Any, code: int = 200, msg: str = "ok") -> dict[str, Any]:
    return {
        "code": code,
        "msg": msg,
        "data": {"callbackType": kind, "task_id": "t1", "data": tracks},
    }


def record(status: str, response: Any = None, error: str | None = None) -> dict[str, Any]:
    data = {"taskId": "t1", "status": status, "response": response, "errorMessage": error}
    return {"code": 200, "msg": "success", "data": data}


def stems(**urls: str) -> dict[str, Any]:
    return {"code": 200, "msg": "ok", "data": {"task_id": "t1", "vocal_removal_info": urls}}


CASES: list[tuple[str, dict[str, Any], str | None, Outcome]] = [
    (
        "complete-none-mp3",
        callback("complete", [{"audio_url": "https://cdn1.suno.ai/None.mp3"}]),
        "music",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "complete-stream-url-only",
        callback(
            "complete",
            [{"audio_url": "", "stream_audio_url": "https://audiopipe.suno.ai/?item_id=1"}],
        ),
        "music",
        Outcome.EMPTY_SUCCESS,
    ),
    ("complete-data-null", callback("complete", None), "extend", Outcome.EMPTY_SUCCESS),
    (
        "complete-one-broken-one-good",
        callback("complete", [{"audio_url": "https://cdn1.suno.ai/None.mp3"}, {"audio_url": MP3}]),
        "music",
        Outcome.SUCCEEDED,
    ),
    (
        "complete-without-operation",
        callback("complete", [{"audio_url": MP3}]),
        None,
        Outcome.SUCCEEDED,
    ),
    (
        "lyrics-asked-but-tracks-elsewhere-count",
        callback("complete", [{"audio_url": MP3}]),
        "lyrics",
        Outcome.SUCCEEDED,
    ),
    (
        "complete-cover-art-only-is-not-music",
        callback("complete", [{"audio_url": "", "image_url": "https://musicfile.example/a.jpeg"}]),
        "music",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "lyrics-blank-text",
        callback("complete", [{"text": "  ", "status": "complete"}]),
        "lyrics",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "lyrics-item-failed",
        callback("complete", [{"text": "la", "status": "failed"}]),
        "lyrics",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "error-451-download-failed",
        callback("error", None, 451, "Download Failed"),
        "music",
        Outcome.FAILED,
    ),
    (
        "error-400-parameter",
        callback("error", None, 400, "Bad Request - Parameter error"),
        "music",
        Outcome.FAILED,
    ),
    (
        "error-400-copyright",
        callback("error", None, 400, "Lyrics contained copyrighted material"),
        "music",
        Outcome.MODERATED,
    ),
    ("record-success-response-null", record("SUCCESS"), "music", Outcome.EMPTY_SUCCESS),
    (
        "record-callback-exception-no-tracks",
        record("CALLBACK_EXCEPTION"),
        "music",
        Outcome.EMPTY_SUCCESS,
    ),
    ("record-text-success", record("TEXT_SUCCESS"), "music", Outcome.PENDING),
    (
        "record-create-failed",
        record("CREATE_TASK_FAILED", error="bad model"),
        "music",
        Outcome.FAILED,
    ),
    (
        "record-audio-failed-copyright",
        record("GENERATE_AUDIO_FAILED", error="Prompt contains copyrighted lyrics"),
        "music",
        Outcome.MODERATED,
    ),
    (
        "api-429-out-of-credits",
        {"code": 429, "msg": "insufficient credits", "data": None},
        "music",
        Outcome.FAILED,
    ),
    (
        "api-430-too-frequent",
        {"code": 430, "msg": "call frequency too high", "data": None},
        "music",
        Outcome.PENDING,
    ),
    (
        "api-405-rate-limit",
        {"code": 405, "msg": "rate limit exceeded", "data": None},
        "music",
        Outcome.PENDING,
    ),
    (
        "api-455-maintenance",
        {"code": 455, "msg": "maintenance", "data": None},
        "music",
        Outcome.PENDING,
    ),
    (
        "two-stems-vocal-only",
        stems(vocal_url=MP3, instrumental_url=""),
        "stems",
        Outcome.EMPTY_SUCCESS,
    ),
    ("two-stems-instrumental-absent", stems(vocal_url=MP3), "stems", Outcome.EMPTY_SUCCESS),
    (
        "twelve-stems-drums-only",
        stems(vocal_url="", drums_url=MP3, bass_url=""),
        "stems",
        Outcome.SUCCEEDED,
    ),
    (
        "twelve-stems-all-empty",
        stems(drums_url="", bass_url="", origin_url=MP3),
        "stems",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "kie-vocal-separation-info",
        {
            "code": 200,
            "data": {
                "task_id": "t1",
                "vocal_separation_info": {"vocal_url": MP3, "instrumental_url": MP3},
            },
        },
        "stems",
        Outcome.SUCCEEDED,
    ),
    (
        "midi-notes-empty",
        {
            "task_id": "m1",
            "code": 200,
            "data": {"state": "complete", "instruments": [{"notes": []}]},
        },
        "midi_export",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "midi-record-audio-id-is-the-input-track-not-output",
        {
            "code": 200,
            "data": {
                "taskId": "m1",
                "audioId": "e2317a3c-90ab-4cde-8f01-23456789abcd",
                "successFlag": 1,
                "midiData": {"state": "complete", "instruments": []},
            },
        },
        "midi_export",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "wav-record-success",
        {
            "code": 200,
            "data": {
                "taskId": "w1",
                "successFlag": "SUCCESS",
                "response": {"audioWavUrl": "https://musicfile.example/a.wav"},
            },
        },
        "wav_export",
        Outcome.SUCCEEDED,
    ),
    (
        "wav-record-failed",
        {"code": 200, "data": {"taskId": "w1", "successFlag": "GENERATE_WAV_FAILED"}},
        "wav_export",
        Outcome.FAILED,
    ),
    (
        "wav-callback-snake-case",
        {
            "code": 200,
            "data": {"audio_wav_url": "https://musicfile.example/a.wav", "task_id": "w1"},
        },
        "wav_export",
        Outcome.SUCCEEDED,
    ),
    (
        "wav-callback-none-wav",
        {
            "code": 200,
            "data": {"audioWavUrl": "https://musicfile.example/None.wav", "task_id": "w1"},
        },
        "wav_export",
        Outcome.EMPTY_SUCCESS,
    ),
]


@pytest.mark.parametrize(
    ("payload", "operation", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_case(payload: dict[str, Any], operation: str | None, expected: Outcome) -> None:
    result = ADAPTER.classify(payload, operation)
    assert result.outcome is expected, result.reason


def test_job_id_in_every_casing() -> None:
    assert ADAPTER.classify(callback("text", [])).provider_job_id == "t1"
    assert ADAPTER.classify(record("PENDING")).provider_job_id == "t1"
    midi = {"task_id": "m1", "code": 500, "msg": "err", "data": None}
    assert ADAPTER.classify(midi, "midi_export").provider_job_id == "m1"


def test_record_failure_reason_names_error_code_not_envelope() -> None:
    result = ADAPTER.classify(record("CREATE_TASK_FAILED", error="bad model"), "music")
    assert "data.status='CREATE_TASK_FAILED'" in result.reason
    assert "data.errorCode" in result.reason


REFUSED: list[tuple[str, Any, str]] = [
    ("unknown-callback-type", callback("partial", []), "data.callbackType"),
    ("unknown-record-status", record("QUEUED"), "data.status"),
    ("unknown-midi-state", {"code": 200, "data": {"state": "running"}}, "data.state"),
    (
        "callback-type-null",
        callback("complete", []) | {"data": {"callbackType": None}},
        "data.callbackType",
    ),
    ("code-201", {"code": 201, "msg": "?", "data": None}, "code"),
    ("code-not-a-number", {"code": "ok", "data": None}, "code"),
    ("no-code-no-status", {"msg": "success", "data": {"task_id": "t1"}}, "code"),
    ("creation-answer-without-task-id", {"code": 200, "msg": "ok", "data": {"taskId": ""}}, "data"),
    ("code-200-data-null", {"code": 200, "msg": "success", "data": None}, "data"),
]


@pytest.mark.parametrize(
    ("payload", "field"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_refused(payload: Any, field: str) -> None:
    with pytest.raises(Unclassifiable) as caught:
        ADAPTER.classify(payload, "music")
    assert caught.value.fields["provider"] == "suno"
    assert caught.value.fields["field"] == field
