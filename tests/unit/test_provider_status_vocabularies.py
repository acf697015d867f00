"""Kind 2 (found by a fresh tester after issue 9): status vocabularies that were missing.

- the Suno Voice statuses (docs.sunoapi.org, suno-voice-record-info);
- a task's creation answer for a charged job: the job exists and is not finished, pending
  (MiniMax ``{task_id, base_resp}``, Suno ``{code: 200, data: {taskId}}``);
- Kling's newer API, whose ``data`` is a list of tasks: one task is the job's answer;
- a decisive envelope error code beats a nested status that no document lists.
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger.errors import Unclassifiable
from ledger.outcomes import Outcome
from providers.registry import classify

OK = {"status_code": 0, "status_msg": "success"}


def _voice(status: str, code: int = 200, voice_id: str = "") -> dict[str, Any]:
    data = {"taskId": "vt1", "voiceId": voice_id, "status": status, "errorCode": None}
    return {"code": code, "msg": "m", "data": data}


def _kling_list(*tasks: dict[str, Any]) -> dict[str, Any]:
    return {"code": 0, "message": "SUCCEED", "request_id": "r", "data": list(tasks)}


VIDEO = {"type": "video", "id": "o1", "url": "https://cdn.kling.example/v.mp4"}

DOCUMENTED: list[tuple[str, str, str | None, dict[str, Any], str]] = [
    ("suno-voice-wait-processing", "suno", "voice_clone", _voice("wait_processing"), "pending"),
    (
        "suno-voice-processing-validate",
        "suno",
        "voice_clone",
        _voice("processing_validate"),
        "pending",
    ),
    ("suno-voice-wait-validating", "suno", "voice_clone", _voice("wait_validating"), "pending"),
    (
        "suno-voice-validate-fail",
        "suno",
        "voice_clone",
        _voice("processing_validate_fail"),
        "failed",
    ),
    ("suno-voice-fail", "suno", "voice_clone", _voice("fail", code=400), "failed"),
    ("suno-voice-success", "suno", "voice_clone", _voice("success", voice_id="v9"), "succeeded"),
    ("suno-voice-success-no-id", "suno", "voice_clone", _voice("success"), "empty_success"),
    (
        "minimax-video-creation-answer",
        "minimax",
        "video",
        {"task_id": "106916112212032", "base_resp": OK},
        "pending",
    ),
    (
        "minimax-long-speech-creation-answer",
        "minimax",
        "speech",
        {"task_id": 95157322514444, "file_id": 95157322514496, "base_resp": OK},
        "pending",
    ),
    (
        "suno-creation-answer",
        "suno",
        "music",
        {"code": 200, "msg": "success", "data": {"taskId": "5c79be8e"}},
        "pending",
    ),
    (
        "kling-task-list-succeeded",
        "kling",
        "video",
        _kling_list({"id": "k1", "status": "succeeded", "outputs": [VIDEO]}),
        "succeeded",
    ),
    (
        "kling-task-list-processing",
        "kling",
        "video",
        _kling_list({"id": "k1", "status": "processing", "outputs": []}),
        "pending",
    ),
    (
        "kling-task-list-failed",
        "kling",
        "video",
        _kling_list({"id": "k1", "status": "failed", "message": "risk control", "outputs": []}),
        "moderated",
    ),
    (
        "suno-error-code-beats-unknown-status",
        "suno",
        "voice_clone",
        _voice("exploded", code=400),
        "failed",
    ),
    (
        "suno-error-code-beats-unknown-numeric-flag",
        "suno",
        None,
        {"code": 501, "msg": "internal error", "data": {"successFlag": 2}},
        "failed",
    ),
    (
        "suno-rate-limit-code-beats-unknown-status",
        "suno",
        "music",
        {"code": 430, "msg": "too frequent", "data": {"status": "THROTTLED"}},
        "pending",
    ),
    (
        "kling-service-code-beats-unknown-task-status",
        "kling",
        "video",
        {"code": 1301, "message": "content security", "data": {"task_id": "1", "task_status": "?"}},
        "moderated",
    ),
]


@pytest.mark.parametrize(
    ("provider", "operation", "payload", "expected"),
    [case[1:] for case in DOCUMENTED],
    ids=[case[0] for case in DOCUMENTED],
)
def test_missing_status_vocabularies_are_classified(
    provider: str, operation: str | None, payload: dict[str, Any], expected: str
) -> None:
    result = classify(provider, payload, operation)
    assert result.outcome is Outcome(expected), result.reason


def test_a_creation_answer_names_its_job() -> None:
    minimax = classify("minimax", {"task_id": "106916", "base_resp": OK}, "video")
    suno = classify("suno", {"code": 200, "data": {"taskId": "5c79"}}, "music")
    assert (minimax.provider_job_id, suno.provider_job_id) == ("106916", "5c79")


STILL_REFUSED: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "kling-several-tasks",
        "kling",
        _kling_list({"id": "a", "status": "succeeded"}, {"id": "b", "status": "failed"}),
        "data",
    ),
    ("kling-no-task", "kling", _kling_list(), "data"),
    ("kling-list-of-non-tasks", "kling", _kling_list(1), "data"),  # type: ignore[arg-type]
    ("suno-ok-code-does-not-decide-unknown-status", "suno", _voice("exploded"), "data.status"),
    (
        "kling-success-code-does-not-decide-unknown-status",
        "kling",
        {"code": 0, "data": {"task_id": "1", "task_status": "?"}},
        "data.task_status",
    ),
    ("suno-creation-answer-without-id", "suno", {"code": 200, "data": {"taskId": ""}}, "data"),
]


@pytest.mark.parametrize(
    ("provider", "payload", "field"),
    [case[1:] for case in STILL_REFUSED],
    ids=[case[0] for case in STILL_REFUSED],
)
def test_what_no_document_decides_is_still_refused(
    provider: str, payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(Unclassifiable) as refused:
        classify(provider, payload, "video")
    assert refused.value.fields["field"] == field
