"""Kling AI: task queries, callbacks (legacy and new design) and submit rejections.

Shapes (Kling API reference and callback protocol; see the provider research notes):

- query response: envelope ``{"code": 0, "message": "SUCCEED", "data": {task}}``. The envelope
  describes the HTTP call only: failed tasks come back with ``code: 0, message: "SUCCEED"``;
- legacy task (query ``data`` or bare callback body): ``task_id``, ``task_status`` submitted |
  processing | succeed | failed, ``task_status_msg``, ``task_result.videos[]`` / ``images[]``;
- new-design task (callback body): ``id``, ``status`` submitted | processing | succeeded |
  failed, ``message``, ``outputs[]`` of ``{"type": "video" | "image" | "audio", "url", …}``.
  Callbacks fire on every status change, so submitted/processing ones are common;
- submit rejection: envelope with ``code`` ≠ 0 and no task (1301 content security policy,
  1302/1303 rate and concurrency limits, …).

A failed task whose message speaks of risk control or moderation is ``moderated``: Kling
publishes no code for asynchronous moderation, only the wording (``输入内容触发平台风控``).
"""

from __future__ import annotations

import re
from typing import Final

from ledger.outcomes import Outcome
from providers.artifacts import first_url
from providers.base import Classification
from providers.common import (
    Adapter,
    Payload,
    as_int,
    done,
    items,
    job_id,
    lookup,
    mapping,
    refuse,
    require_status,
    short,
    status_in,
    text,
)

__all__ = ["ADAPTER", "NAME"]

NAME: Final = "kling"

STATUS: Final[dict[str, Outcome]] = {
    "submitted": Outcome.PENDING,
    "processing": Outcome.PENDING,
    "succeed": Outcome.SUCCEEDED,  # legacy spelling; only with a usable artifact
    "succeeded": Outcome.SUCCEEDED,  # new-design spelling; only with a usable artifact
    "failed": Outcome.FAILED,  # moderated when the message speaks of risk control
}

SUBMIT_CODES: Final[dict[range, Outcome]] = {
    range(1000, 1005): Outcome.FAILED,  # authentication
    range(1100, 1104): Outcome.FAILED,  # account: arrears, resource pack depleted, no access
    range(1200, 1204): Outcome.FAILED,  # invalid parameters, method or model
    range(1300, 1301): Outcome.FAILED,  # platform strategy triggered (moderated by wording)
    range(1301, 1302): Outcome.MODERATED,  # content security policy triggered
    range(1302, 1304): Outcome.PENDING,  # rate / concurrency limit: no task yet, resubmit
    range(1304, 1305): Outcome.FAILED,  # IP whitelist policy
    range(5000, 5003): Outcome.FAILED,  # internal error, maintenance, internal timeout
}
"""The documented non-zero envelope codes, for rejections that come without a task."""

RISK_TEXT: Final = re.compile(
    r"risk|moderat|sensitive|content (?:security|safety|polic)|inappropriate|风控|违规|审核|敏感",
    re.IGNORECASE,
)

LEGACY_RESULTS: Final[dict[str, tuple[str, ...]]] = {
    "video": ("videos",),
    "image": ("images",),
}
"""``task_result`` lists per operation; other operations accept any of them."""

OUTPUT_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "video": ("video",),
    "image": ("image",),
    "music": ("audio",),
}
"""New-design ``outputs[].type`` per operation; other operations accept any output."""

URL_KEYS: Final = ("url", "mp3_url", "wav_url")  # a watermark_url alone is not the paid output


def _rules(payload: Payload, operation: str | None) -> Classification:
    data = mapping(payload.get("data"))
    if data is not None and ("task_status" in data or "status" in data):
        return _task(data, "data.", operation)
    if "code" in payload and "task_status" not in payload:
        return _envelope(payload)
    return _task(payload, "", operation)


def _envelope(payload: Payload) -> Classification:
    """An answer without a task: a submit rejection, or a success envelope missing its task."""
    code = as_int(payload.get("code"))
    if code is None:
        raise refuse("unknown code", NAME, field="code", value=short(payload.get("code")))
    if code == 0:
        raise refuse("missing status", NAME, field="data.task_status")
    outcome = next((o for codes, o in SUBMIT_CODES.items() if code in codes), None)
    if outcome is None:
        raise refuse("unknown code", NAME, field="code", value=code)
    message = text(payload.get("message"))
    if outcome is Outcome.FAILED and RISK_TEXT.search(message):
        outcome = Outcome.MODERATED
    return Classification(outcome, f"code={code} ({short(message, 40)})")


def _task(task: Payload, prefix: str, operation: str | None) -> Classification:
    legacy = "task_status" in task or "task_id" in task
    field = "task_status" if legacy else "status"
    job = job_id(task, "task_id" if legacy else "id")
    status = require_status(task, field, NAME)
    outcome = status_in(STATUS, status, NAME, prefix + field)
    decided = f"{prefix}{field}={status!r}"
    if outcome is Outcome.SUCCEEDED:
        return _artifact(task, prefix, legacy, operation, decided, job)
    if outcome is Outcome.FAILED:
        msg_field = "task_status_msg" if legacy else "message"
        message = text(task.get(msg_field))
        if RISK_TEXT.search(message):
            outcome = Outcome.MODERATED
        return Classification(outcome, f"{decided}, {prefix}{msg_field}={short(message, 40)}", job)
    return Classification(outcome, decided, job)


def _artifact(
    task: Payload, prefix: str, legacy: bool, operation: str | None, decided: str, job: str | None
) -> Classification:
    if legacy:
        lists = LEGACY_RESULTS.get(operation or "", ("videos", "images"))
        results = mapping(task.get("task_result")) or {}
        found = next((u for k in lists if (u := first_url(items(results.get(k))))), None)
        what = f"{prefix}task_result.{'|'.join(lists)}[].url"
        return done(decided, found, what, job)
    kinds = OUTPUT_TYPES.get(operation or "")
    outputs = [o for o in items(task.get("outputs")) if kinds is None or lookup(o, "type") in kinds]
    what = f"{prefix}outputs[{'|'.join(kinds or ('*',))}].url"
    return done(decided, first_url(outputs, URL_KEYS), what, job)


ADAPTER: Final = Adapter(NAME, _rules)
