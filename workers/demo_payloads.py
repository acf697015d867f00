"""Provider payloads for the demo, in the documented shapes of Fal.ai and Kling."""

from __future__ import annotations

from typing import Any

__all__ = ["DEMO_OUTCOMES", "demo_payload"]

Payload = dict[str, Any]


def _fal(job: str, outcome: str) -> Payload:
    base: Payload = {"request_id": job, "gateway_request_id": job}
    if outcome == "succeeded":
        return base | {
            "status": "OK",
            "error": None,
            "payload": {
                "video": {
                    "url": f"https://v3.fal.media/files/demo/{job}.mp4",
                    "content_type": "video/mp4",
                }
            },
        }
    if outcome == "failed":
        return base | {
            "status": "ERROR",
            "error": "Invalid status code: 504",
            "payload": {"detail": [{"msg": "Generation timed out", "type": "generation_timeout"}]},
        }
    if outcome == "moderated":
        return base | {
            "status": "ERROR",
            "error": "Invalid status code: 422",
            "payload": {
                "detail": [
                    {
                        "loc": ["body", "prompt"],
                        "msg": "flagged by a content checker",
                        "type": "content_policy_violation",
                    }
                ]
            },
        }
    if outcome == "empty_success":
        return base | {"status": "OK", "error": None, "payload": {"video": None}}
    if outcome == "cancelled":
        return {
            "status": "COMPLETED",
            "request_id": job,
            "logs": None,
            "metrics": {},
            "error": "Request was cancelled by the client",
            "error_type": "client_cancelled",
        }
    if outcome == "pending":
        return {"status": "IN_PROGRESS", "request_id": job, "logs": []}
    return base | {"payload": {"video": None}}  # no status at all: unclassifiable


def _kling(job: str, outcome: str) -> Payload:
    if outcome == "succeeded":
        return {
            "id": job,
            "status": "succeeded",
            "message": "",
            "outputs": [
                {
                    "type": "video",
                    "id": f"v{job}",
                    "url": f"https://cdn.klingai.com/demo/{job}.mp4",
                    "duration": "5",
                }
            ],
        }
    if outcome == "failed":
        return {
            "code": 0,
            "message": "SUCCEED",
            "request_id": f"req-{job}",
            "data": {
                "task_id": job,
                "task_status": "failed",
                "task_status_msg": "Image pixel is invalid",
                "task_info": {},
                "task_result": {},
            },
        }
    if outcome == "moderated":
        return {
            "id": job,
            "status": "failed",
            "message": "content moderation failed",
            "outputs": [],
        }
    if outcome == "empty_success":
        return {
            "task_id": job,
            "task_status": "succeed",
            "task_status_msg": "",
            "task_result": {"videos": []},
        }
    if outcome == "pending":
        return {"id": job, "status": "processing", "message": "", "outputs": []}
    return {"id": job, "status": "exploded", "outputs": []}  # unknown status: unclassifiable


DEMO_OUTCOMES: dict[str, tuple[str, ...]] = {
    "fal": ("succeeded", "failed", "moderated", "empty_success", "cancelled"),
    "kling": ("succeeded", "failed", "moderated", "empty_success"),
}


def demo_payload(provider: str, job: str, outcome: str) -> Payload:
    """A payload of ``provider`` meaning ``outcome`` (``unclassifiable`` for a broken one)."""
    return _fal(job, outcome) if provider == "fal" else _kling(job, outcome)
