"""MiniMax music cases beyond the shared fixtures: errors live in HTTP 200 bodies."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.errors import Unclassifiable
from ledger.outcomes import Outcome
from providers.minimax import ADAPTER


def body(code: Any = 0, msg: str = "success", data: Any = None) -> dict[str, Any]:
    return {
        "data": data,
        "trace_id": "trace-case",
        "base_resp": {"status_code": code, "status_msg": msg},
    }


CASES: list[tuple[str, dict[str, Any], Outcome]] = [
    ("done-hex-audio", body(data={"status": 2, "audio": "49443304"}), Outcome.SUCCEEDED),
    ("done-audio-empty", body(data={"status": 2, "audio": ""}), Outcome.EMPTY_SUCCESS),
    ("done-audio-absent", body(data={"status": 2}), Outcome.EMPTY_SUCCESS),
    (
        "done-audio-none-url",
        body(data={"status": 2, "audio": "https://m.example/None.mp3"}),
        Outcome.EMPTY_SUCCESS,
    ),
    ("done-audio-not-hex", body(data={"status": 2, "audio": "None"}), Outcome.EMPTY_SUCCESS),
    ("done-audio-odd-hex", body(data={"status": 2, "audio": "abc"}), Outcome.EMPTY_SUCCESS),
    (
        "done-format-word-beside-empty-audio",
        body(data={"status": 2, "audio": "", "audio_format": "flac"}),
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "done-subtitles-only",
        body(data={"status": 2, "subtitle_file": "https://m.example/sub.json"}),
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "codes-as-strings",
        body(code="0", data={"status": "2", "audio": "https://m.example/a.mp3"}),
        Outcome.SUCCEEDED,
    ),
    ("rate-limited-1002", body(1002, "rate limit"), Outcome.PENDING),
    ("timeout-1001", body(1001, "request timeout"), Outcome.FAILED),
    ("invalid-params-2013", body(2013, "invalid params"), Outcome.FAILED),
    ("undocumented-code-sensitive-text", body(1099, "content is sensitive"), Outcome.MODERATED),
    (
        "error-code-wins-over-data",
        body(1027, "output new_sensitive", {"status": 2, "audio": "ab"}),
        Outcome.MODERATED,
    ),
]


@pytest.mark.parametrize(("payload", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_case(payload: dict[str, Any], expected: Outcome) -> None:
    result = ADAPTER.classify(payload, "music")
    assert result.outcome is expected, result.reason
    assert result.provider_job_id is None  # trace_id names the request, not a job


REFUSED: list[tuple[str, Any, str]] = [
    ("no-base-resp", {"data": {"status": 2, "audio": "ab"}}, "base_resp.status_code"),
    ("status-code-bool", body(True), "base_resp.status_code"),
    ("status-code-text", body("ok"), "base_resp.status_code"),
    ("success-without-data", body(0, data=None), "data.status"),
    ("unknown-data-status", body(0, data={"status": 3, "audio": "ab"}), "data.status"),
    ("data-status-text", body(0, data={"status": "done", "audio": "ab"}), "data.status"),
]


@pytest.mark.parametrize(
    ("payload", "field"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_refused(payload: Any, field: str) -> None:
    with pytest.raises(Unclassifiable) as caught:
        ADAPTER.classify(payload, "music")
    assert caught.value.fields["provider"] == "minimax"
    assert caught.value.fields["field"] == field
