"""Kling AI: task queries, callbacks (legacy and new design) and submit rejections.

Shapes (Kling API reference and callback protocol; see the provider research notes):

- query response: envelope ``{"code": 0, "message": "SUCCEED", "data": {task}}``. The envelope
  describes the HTTP call only: failed tasks come back with ``code: 0, message: "SUCCEED"``;
- legacy task (query ``data`` or bare callback body; every model up to Kling 3.0 Omni):
  ``task_id``, ``task_status`` submitted | processing | succeed | failed, ``task_status_msg``,
  ``task_info`` (the creation parameters: never output) and ``task_result`` with ``videos[]``
  (video, lip-sync, extend), ``images[]`` (image, virtual try-on) and ``audios[]`` of
  ``{"url_mp3", "url_wav"}`` (text-to-audio, video-to-audio);
- new-design task (callback body): ``id``, ``status`` submitted | processing | succeeded |
  failed, ``message``, ``outputs[]`` of ``{"type": "video" | "image" | "audio" | "voice" |
  "element", …}`` (``url``, ``mp3_url``/``wav_url``, ``watermark_url``). Callbacks fire on
  every status change, so submitted/processing ones are common;
- newer API query: the same envelope whose ``data`` is a list of the matching tasks, each a
  new-design task (:func:`_task_list`);
- submit rejection: envelope with ``code`` ≠ 0 and no task (:data:`SERVICE_CODES`). A
  documented non-zero code also decides beside a task whose status no document lists.

Sources: https://klingai.com/document-api/api/get-started/callbacks,
…/api/get-started/error-codes, …/api/video/audio-generation/video-to-audio.

A failed task whose message speaks of risk control or moderation is ``moderated``: Kling
publishes no code for asynchronous moderation, only the wording (``输入内容触发平台风控``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Unpack
from urllib.parse import quote

import httpx
import jwt

from ledger.errors import NoStatusQuery, Unclassifiable
from ledger.outcomes import Outcome
from providers.base import Classification
from providers.common import (
    Adapter,
    Payload,
    as_int,
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
from providers.outputs import Field, Output, done, find_output
from providers.pollers import HTTPOptions, Poller, bearer, envelope_code
from providers.status_http import (
    JobGone,
    ProviderAuthFailed,
    ProviderRequestRejected,
    StatusClient,
    json_object,
    raise_for_status,
    retryable_status,
)

__all__ = [
    "ADAPTER",
    "AUTH_CODES",
    "GONE_CODES",
    "KLING_BASE_URL",
    "NAME",
    "RETRY_CODES",
    "SERVICE_CODES",
    "KlingPoller",
    "ServiceCode",
]

NAME: Final = "kling"

STATUS: Final[dict[str, Outcome]] = {
    "submitted": Outcome.PENDING,
    "processing": Outcome.PENDING,
    "succeed": Outcome.SUCCEEDED,  # legacy spelling; only with an output
    "succeeded": Outcome.SUCCEEDED,  # new-design spelling; only with an output
    "failed": Outcome.FAILED,  # moderated when the message speaks of risk control
}


@dataclass(frozen=True, slots=True)
class ServiceCode:
    """One documented service ``code`` of Kling's envelope."""

    http: int
    """The HTTP status Kling sends with it."""
    meaning: str
    outcome: Outcome
    """What a submit rejected with this code means for the generation (no task exists)."""
    retry: bool = False
    """Whether asking again later can succeed (rate limits, internal errors)."""


_AUTH = "authentication failed"
SERVICE_CODES: Final[dict[int, ServiceCode]] = {
    1000: ServiceCode(401, _AUTH, Outcome.FAILED),
    1001: ServiceCode(401, _AUTH + ": authorization empty", Outcome.FAILED),
    1002: ServiceCode(401, _AUTH + ": authorization invalid", Outcome.FAILED),
    1003: ServiceCode(401, _AUTH + ": authorization not yet valid", Outcome.FAILED),
    1004: ServiceCode(401, _AUTH + ": authorization expired", Outcome.FAILED),
    1100: ServiceCode(429, "account exception", Outcome.FAILED),
    1101: ServiceCode(429, "account in arrears", Outcome.FAILED),
    1102: ServiceCode(429, "resource pack exhausted or expired", Outcome.FAILED),
    1103: ServiceCode(403, "no access to the API or model", Outcome.FAILED),
    1200: ServiceCode(400, "invalid request parameters", Outcome.FAILED),
    1201: ServiceCode(400, "invalid parameters", Outcome.FAILED),
    1202: ServiceCode(404, "invalid request method", Outcome.FAILED),
    1203: ServiceCode(404, "requested resource does not exist", Outcome.FAILED),
    1300: ServiceCode(400, "platform policy triggered", Outcome.FAILED),  # moderated by wording
    1301: ServiceCode(400, "content security policy triggered", Outcome.MODERATED),
    1302: ServiceCode(429, "rate limit exceeded", Outcome.PENDING, retry=True),
    1303: ServiceCode(429, "concurrency over the resource pack limit", Outcome.PENDING, retry=True),
    1304: ServiceCode(429, "IP whitelist policy", Outcome.FAILED),
    5000: ServiceCode(500, "internal error", Outcome.FAILED, retry=True),
    5001: ServiceCode(503, "temporarily unavailable", Outcome.FAILED, retry=True),
    5002: ServiceCode(504, "internal timeout", Outcome.FAILED, retry=True),
}
"""Every documented envelope ``code`` (https://klingai.com/document-api/api/get-started/
error-codes). The classifier reads it for rejections that come without a task; the status
poller reads :data:`AUTH_CODES`, :data:`GONE_CODES` and :data:`RETRY_CODES` from it."""

AUTH_CODES: Final = frozenset(c for c, s in SERVICE_CODES.items() if s.http == 401)
GONE_CODES: Final = frozenset({1203})
"""The task (or model) asked for does not exist."""
RETRY_CODES: Final = frozenset(c for c, s in SERVICE_CODES.items() if s.retry)

RISK_TEXT: Final = re.compile(
    r"risk|moderat|sensitive|content (?:security|safety|polic)|inappropriate|风控|违规|审核|敏感",
    re.IGNORECASE,
)

AUDIOS: Final = ("audios",)
LEGACY_RESULTS: Final[dict[str, tuple[str, ...]]] = {
    "video": ("videos",),
    "image": ("images",),
    "music": AUDIOS,
    "speech": AUDIOS,
    "sound_effects": AUDIOS,
}
"""``task_result`` lists looked at first per operation; then the rest of ``task_result``."""

OUTPUT_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "video": ("video",),
    "image": ("image",),
    "music": ("audio",),
    "speech": ("audio",),
    "sound_effects": ("audio",),
    "voice_clone": ("voice",),
}
"""New-design ``outputs[].type`` looked at first per operation; then any other output."""

IDENTIFIED_TYPES: Final = frozenset({"voice", "element"})
"""Output types whose deliverable is the id itself (a voice, a subject); their ``url`` is a
preview and their ``materials`` are the user's uploads."""


def _rules(payload: Payload, operation: str | None) -> Classification:
    envelope = _decisive_envelope(payload)
    tasks = payload.get("data")
    if isinstance(tasks, list):
        return _task_list(tasks, operation, envelope)
    data = mapping(tasks)
    if data is not None and ("task_status" in data or "status" in data):
        return _task(data, "data.", operation, envelope)
    if "code" in payload and "task_status" not in payload:
        return _envelope(payload)
    return _task(payload, "", operation, None)


def _decisive_envelope(payload: Payload) -> Classification | None:
    """What a documented non-zero envelope ``code`` means, or ``None`` for code 0 (which says
    only that the HTTP call went through) and any code no document lists. It decides when
    the task beside it has a status no document lists, never over a documented status."""
    code = as_int(payload.get("code"))
    if code is None or code == 0 or code not in SERVICE_CODES:
        return None
    return _envelope(payload)


def _task_list(
    tasks: list[object], operation: str | None, envelope: Classification | None
) -> Classification:
    """The newer API's answer, whose ``data`` is a list of the tasks matching the query
    (https://docs.comfy.org/development/comfy-router/models/kling/kling-3-0-turbo/code.md).
    A query by task id matches one task: that task is the job's answer. The classifier is
    not told the job id, so a list of several tasks (or none) cannot be read as one job's
    answer and is refused, unless a documented envelope code decides."""
    task = mapping(tasks[0]) if len(tasks) == 1 else None
    if task is not None:
        return _task(task, "data[0].", operation, envelope)
    if envelope is not None:
        return envelope
    problem = "no task" if not tasks else "not exactly one task"
    raise refuse(f"the task list holds {problem}", NAME, field="data", count=len(tasks))


def _envelope(payload: Payload) -> Classification:
    """An answer without a task: a submit rejection, or a success envelope missing its task."""
    code = as_int(payload.get("code"))
    if code is None:
        raise refuse("unknown code", NAME, field="code", value=short(payload.get("code")))
    if code == 0:
        raise refuse("missing status", NAME, field="data.task_status")
    known = SERVICE_CODES.get(code)
    if known is None:
        raise refuse("unknown code", NAME, field="code", value=code)
    message = text(payload.get("message"))
    outcome = known.outcome
    if outcome is Outcome.FAILED and RISK_TEXT.search(message):
        outcome = Outcome.MODERATED
    return Classification(outcome, f"code={code} ({short(message or known.meaning, 40)})")


def _task(
    task: Payload, prefix: str, operation: str | None, envelope: Classification | None
) -> Classification:
    legacy = "task_status" in task or "task_id" in task
    field = "task_status" if legacy else "status"
    job = job_id(task, "task_id" if legacy else "id")
    if envelope is not None and not (isinstance(task.get(field), str) and task[field] in STATUS):
        return Classification(envelope.outcome, envelope.reason, job)
    status = require_status(task, field, NAME)
    outcome = status_in(STATUS, status, NAME, prefix + field)
    decided = f"{prefix}{field}={status!r}"
    if outcome is Outcome.SUCCEEDED:
        if legacy:
            return _legacy_output(task, prefix, operation, decided, job)
        return _new_output(task, prefix, operation, decided, job)
    if outcome is Outcome.FAILED:
        msg_field = "task_status_msg" if legacy else "message"
        message = text(task.get(msg_field))
        if RISK_TEXT.search(message):
            outcome = Outcome.MODERATED
        return Classification(outcome, f"{decided}, {prefix}{msg_field}={short(message, 40)}", job)
    return Classification(outcome, decided, job)


def _legacy_output(
    task: Payload, prefix: str, operation: str | None, decided: str, job: str | None
) -> Classification:
    lists = LEGACY_RESULTS.get(operation or "", ("videos", "images", "audios"))
    at = f"{prefix}task_result"
    known = [Field(k) for k in lists]
    found = find_output(task.get("task_result"), known, at=at, operation=operation)
    return done(decided, found, f"{at} ({'|'.join(lists)} first)", job)


def _typed(kinds: tuple[str, ...]) -> Field:
    """The outputs of the operation's own types, an identified type counting by its id."""

    def check(outputs: object, path: str) -> Output | None:
        for index, output in enumerate(items(outputs)):
            kind = lookup(output, "type")
            if kind in kinds:
                ids = ("id",) if kind in IDENTIFIED_TYPES else ()
                found = find_output(output, at=f"{path}[{index}]", ids=ids)
                if found is not None:
                    return found
        return None

    return Field("", check)


def _new_output(
    task: Payload, prefix: str, operation: str | None, decided: str, job: str | None
) -> Classification:
    kinds = OUTPUT_TYPES.get(operation or "")
    known = [_typed(kinds)] if kinds else [_typed(tuple(IDENTIFIED_TYPES))]
    at = f"{prefix}outputs"
    found = find_output(task.get("outputs"), known, at=at, operation=operation)
    return done(decided, found, f"{at} ({'|'.join(kinds or ('*',))} first)", job)


ADAPTER: Final = Adapter(NAME, _rules)


# --------------------------------------------------------------------------- status poller

KLING_BASE_URL: Final = "https://api-singapore.klingai.com"
KLING_PATHS: Final[dict[str, tuple[str, ...]]] = {
    "video": ("/v1/videos/text2video", "/v1/videos/image2video"),
    "text2video": ("/v1/videos/text2video",),
    "image2video": ("/v1/videos/image2video",),
    "image": ("/v1/images/generations",),
}
"""Where a task of each operation may be queried, in order; no operation: a video."""
KLING_FINAL_CODES: Final = frozenset(SERVICE_CODES) - RETRY_CODES
"""Documented codes that no retry fixes, whatever HTTP status comes with them."""
TOKEN_TTL_S: Final = 1800
TOKEN_LEEWAY_S: Final = 5


def _kling_retryable(response: httpx.Response) -> bool:
    code = envelope_code(response)
    if code in KLING_FINAL_CODES:
        return False
    return retryable_status(response) or code in RETRY_CODES


class KlingPoller(Poller):
    """``GET /v1/videos/text2video/{id}`` (…): the ``{"code", "data": {task}}`` envelope.

    - Kling: the query path mirrors the creation path and there is no generic one, so a
      ``video`` task is looked for under ``text2video`` then ``image2video``: ``JobGone`` only when
      every candidate answers HTTP 404 / 410 or code 1203 ("requested resource does not exist").
      The codes are read from the one table of them, ``providers.kling.SERVICE_CODES``: the
      authentication codes are ``ProviderAuthFailed``; only rate limits and internal errors are
      retried, so the account codes that come with HTTP 429 (arrears, resource pack, IP
      whitelist) are not. The JWT (HS256, ``iss`` = access key, ``exp`` = now + 30
      min, ``nbf`` = now - 5 s) is signed afresh for every attempt.
    """

    name = "kling"

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        base_url: str = KLING_BASE_URL,
        *,
        clock: Callable[[], float] = time.time,
        **options: Unpack[HTTPOptions],
    ) -> None:
        self._access_key = access_key
        self._secret_key = secret_key
        self._clock = clock
        http = StatusClient(base_url, self._headers, retryable=_kling_retryable, **options)
        super().__init__(http)

    def _headers(self) -> dict[str, str]:
        now = int(self._clock())
        claims = {"iss": self._access_key, "exp": now + TOKEN_TTL_S, "nbf": now - TOKEN_LEEWAY_S}
        token = jwt.encode(claims, self._secret_key, algorithm="HS256", headers={"typ": "JWT"})
        return bearer(token)

    def _poll(self, job_id: str, operation: str | None) -> dict[str, Any]:
        paths = KLING_PATHS.get(operation or "video")
        if paths is None:
            raise NoStatusQuery(provider=self.name, operation=operation)
        tail = quote(job_id, safe="")
        for path in paths[:-1]:
            try:
                return self._query(f"{path}/{tail}", job_id)
            except JobGone:
                continue  # perhaps created through the next endpoint
        return self._query(f"{paths[-1]}/{tail}", job_id)

    def _query(self, path: str, job_id: str) -> dict[str, Any]:
        response = self._http.get(path, provider=self.name, job_id=job_id)
        status = response.status_code
        code = envelope_code(response)
        if code in GONE_CODES:
            raise JobGone(provider=self.name, job_id=job_id, status=status)
        if code in AUTH_CODES:
            raise ProviderAuthFailed(provider=self.name, status=status, code=code)
        raise_for_status(response, provider=self.name, job_id=job_id, code=code)
        body = json_object(response) or {}
        data = body.get("data")
        if isinstance(data, Mapping) and ("task_status" in data or "status" in data):
            self._same_job(data.get("task_id", data.get("id")), job_id)
            return body
        if code is not None and code != 0:
            raise ProviderRequestRejected(
                provider=self.name, job_id=job_id, status=status, code=code
            )
        raise Unclassifiable("the task query answer holds no task", provider=self.name)
