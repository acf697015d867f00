"""Real result shapes of every provider, with their status words: the seeds the classifier
properties mutate (``tests/unit/test_classifier_properties.py``)."""

from __future__ import annotations

from typing import Any

URL = "https://cdn.example/out.mp4"
BROKEN = "https://cdn.example/None.mp3"
DATA = "data:audio/wav;base64,UklGRiQAAABXQVZF"
COMMON: list[Any] = [
    None,
    "",
    " ",
    0,
    1,
    200,
    True,
    False,
    [],
    {},
    [True],
    URL,
    BROKEN,
    DATA,
    "data:,",
    "ftp://x/a",
]

SKELETONS: dict[str, list[dict[str, Any]]] = {
    "fal": [
        {"request_id": "r1", "status": "IN_QUEUE", "queue_position": 1},
        {"request_id": "r1", "status": "COMPLETED", "error": "x", "error_type": "client_cancelled"},
        {
            "request_id": "r1",
            "status": "OK",
            "payload_error": None,
            "payload": {
                "video": {"url": URL},
                "images": [{"url": URL}],
                "has_nsfw_concepts": [False],
                "diffusers_lora_file": {"url": URL},
                "audio": URL,
            },
        },
        {
            "status": "ERROR",
            "error": "x",
            "payload": {"detail": [{"type": "file_download_error", "msg": "m"}]},
        },
        {"detail": "Request timed out", "error_type": "request_timeout"},
        {"video": {"url": URL}, "has_nsfw_concepts": [False]},
        {"images": [{"url": DATA}], "seed": 1},
        {
            "status": "OK",
            "payload": {
                "lora_file": {"url": URL},
                "config_file": {"url": URL},
                "finetune_id": "f1",
                "response_url": URL,
            },
        },
        {
            "status": "OK",
            "payload": {"images": [{"url": URL}, {"url": URL}], "has_nsfw_concepts": [True, False]},
        },
        {"status": "OK", "payload": [{"voice_id": "v1"}]},
        {"voice_id": "v1"},
    ],
    "kling": [
        {
            "code": 0,
            "message": "SUCCEED",
            "data": {
                "task_id": "1",
                "task_status": "succeed",
                "task_status_msg": "",
                "task_result": {"videos": [{"url": URL}], "images": [{"url": URL}]},
            },
        },
        {"task_id": "1", "task_status": "failed", "task_status_msg": "风控", "task_result": {}},
        {
            "id": "1",
            "status": "succeeded",
            "message": "",
            "outputs": [{"type": "video", "url": URL}, {"type": "audio", "mp3_url": URL}],
        },
        {"code": 1303, "message": "parallel task over resource pack limit"},
        {
            "task_id": "1",
            "task_status": "succeed",
            "task_info": {"parent_video": {"url": URL}},
            "task_result": {"audios": [{"url_mp3": URL, "url_wav": DATA}], "videos": []},
        },
        {
            "id": "1",
            "status": "succeeded",
            "outputs": [
                {"type": "voice", "id": "v1", "url": URL},
                {"type": "element", "id": "e1", "materials": [{"url": URL}]},
            ],
        },
        {
            "code": 0,
            "message": "SUCCEED",
            "data": [
                {"id": "1", "status": "succeeded", "outputs": [{"type": "video", "url": URL}]}
            ],
        },
        {"code": 1301, "data": {"task_id": "1", "task_status": "?"}},
    ],
    "openai": [
        {
            "id": "v1",
            "object": "video",
            "status": "failed",
            "error": {"code": "moderation_blocked", "message": "m"},
        },
        {"error": {"code": "rate_limit_exceeded", "message": "m", "type": "t"}},
        {"object": "event", "type": "video.completed", "data": {"id": "v1"}},
    ],
    "suno": [
        {
            "code": 200,
            "msg": "ok",
            "data": {
                "callbackType": "complete",
                "task_id": "t",
                "data": [{"audio_url": URL, "text": "la", "status": "complete"}],
            },
        },
        {
            "code": 200,
            "data": {
                "taskId": "t",
                "status": "SUCCESS",
                "errorMessage": None,
                "response": {
                    "sunoData": [{"audioUrl": URL}],
                    "lyricsData": [{"text": "la"}],
                    "audioWavUrl": URL,
                },
            },
        },
        {"code": 200, "data": {"taskId": "t", "successFlag": "PENDING", "errorCode": None}},
        {
            "code": 200,
            "data": {
                "task_id": "t",
                "audioWavUrl": URL,
                "vocal_removal_info": {"vocal_url": URL, "instrumental_url": URL, "drums_url": ""},
            },
        },
        {
            "task_id": "m",
            "code": 200,
            "msg": "ok",
            "data": {
                "state": "complete",
                "instruments": [{"name": "Drums", "notes": [{"pitch": 36}]}],
            },
        },
        {
            "code": 200,
            "data": {
                "taskId": "c",
                "successFlag": 1,
                "midiData": {"instruments": [{"notes": [{"pitch": 1}]}]},
                "response": {"images": [URL], "videoUrl": URL},
            },
        },
        {
            "code": 400,
            "msg": "m",
            "data": {"taskId": "v", "voiceId": "vc", "status": "success", "errorCode": 500},
        },
        {"code": 200, "msg": "success", "data": {"taskId": "t"}},
        {
            "code": 200,
            "data": {
                "personaId": "p1",
                "alignedWords": [{"word": "la"}],
                "video_url": URL,
                "images": [URL],
            },
        },
    ],
    "minimax": [
        {
            "data": {"status": 2, "audio": URL},
            "trace_id": "t",
            "base_resp": {"status_code": 0, "status_msg": "success"},
        },
        {"data": None, "base_resp": {"status_code": 1026, "status_msg": "input new_sensitive"}},
        {"task_id": "1", "status": "Success", "file_id": "2", "base_resp": {"status_code": 0}},
        {
            "task": {
                "id": "1",
                "status": "failed",
                "error": {"code": "1026"},
                "content": {"url": URL},
            }
        },
        {"type": "error", "error": {"type": "rate_limit_error", "message": "x (1002)"}},
        {"task_id": "1", "base_resp": {"status_code": 0}},
        {"song_title": "t", "style_tags": "s", "lyrics": "la", "base_resp": {"status_code": 0}},
        {
            "data": {"image_base64": ["/9j/4AAQ"], "image_urls": [URL]},
            "metadata": {"success_count": "1", "failed_count": "0"},
            "base_resp": {"status_code": 0},
        },
        {
            "input_sensitive": {"type": 0},
            "demo_audio": URL,
            "file": {"download_url": URL},
            "base_resp": {"status_code": 0},
        },
    ],
    "elevenlabs": [
        {"detail": {"status": "bad_prompt", "message": "m", "data": {"prompt_suggestion": "p"}}},
        {"voice_id": "v1", "requires_verification": False},
        {"audio_base64": "SUQz"},
        {
            "voice_id": "v1",
            "category": "professional",
            "fine_tuning": {"state": {"m1": "fine_tuned", "m2": "failed"}, "message": {"m2": "x"}},
        },
        {"status": "ok"},
        {"previews": [{"audio_base_64": "SUQz", "generated_voice_id": "g"}], "text": "t"},
    ],
    "replicate": [
        {"id": "p1", "status": "succeeded", "output": [URL], "error": None},
        {"id": "p1", "status": "failed", "output": None, "error": "flagged as sensitive (E005)"},
        {"detail": "Request was throttled.", "status": 429, "title": "t"},
        {"id": "p1", "status": "succeeded", "output": ["la", " la"], "data_removed": True},
        {
            "id": "t1",
            "status": "succeeded",
            "output": {"version": "o/m:1", "weights": DATA},
            "urls": {"get": URL},
        },
    ],
}
"""Real payload shapes per provider, the seeds of the mutants."""

WORDS: dict[str, list[Any]] = {
    "fal": [
        "IN_QUEUE",
        "IN_PROGRESS",
        "COMPLETED",
        "OK",
        "ERROR",
        "client_cancelled",
        "content_policy_violation",
        "runner_disconnected",
        "CANCELLATION_REQUESTED",
        "voice_id",
    ],
    "kling": [
        0,
        1301,
        1302,
        5000,
        9999,
        "1301",
        1103,
        *["submitted", "processing", "succeed", "succeeded", "failed", "video", "image", "audio"],
        *["voice", "element"],
    ],
    "openai": [
        "queued",
        "in_progress",
        "completed",
        "failed",
        "cancelled",
        "moderation_blocked",
        "sentinel_block",
        "rate_limit_exceeded",
        "event",
        "video",
        "video.completed",
        "video.failed",
    ],
    "suno": [
        400,
        405,
        413,
        429,
        451,
        500,
        "200",
        *[
            "text",
            "first",
            "complete",
            "error",
            "PENDING",
            "SUCCESS",
            "FIRST_SUCCESS",
            "CALLBACK_EXCEPTION",
            "SENSITIVE_WORD_ERROR",
            "GENERATE_MP4_FAILED",
            "violation",
            *["wait_processing", "processing_validate_fail", "wait_validating", "success", "fail"],
            0,
            2,
            3,
            "1",
        ],
    ],
    "minimax": [
        *[2, 3, 1002, 1026, 1027, "0", "2", "abcd", "abc", "sensitive"],
        *["Preparing", "Queueing", "Processing", "Success", "Fail", "Failed", "Expired"],
        *["queued", "running", "succeeded", "failed", "cancelled", "error", "1026"],
    ],
    "elevenlabs": [
        *["bad_prompt", "bad_composition_plan", "quota_exceeded", "system_busy", "ok"],
        *["not_started", "queued", "fine_tuning", "fine_tuned", "failed", "delayed"],
        "professional",
    ],
    "replicate": [
        429,
        422,
        *[
            "starting",
            "processing",
            "succeeded",
            "failed",
            "canceled",
            "aborted",
            "E005",
            "throttled",
        ],
    ],
}
"""Each provider's status words and codes, used to replace fields of the skeletons."""
