"""Status pollers: ask the provider that runs a job how it stands (the stuck-generation sweep).

Pure I/O over :class:`~providers.status_http.StatusClient` (retries, ``Retry-After``, the
error classes), no classification: each poller returns the JSON its provider's classifier
reads (``providers/replicate.py``, ``suno.py``, ``kling.py``). Every poller is a
``JobFetcher`` (``poller(provider, job_id)``) and also has ``poll(provider, job_id,
operation)``: the generation's operation picks the endpoint where the API has several.

| provider | status query (``GET``) | auth | ``JobGone`` |
| --- | --- | --- | --- |
| Replicate | ``/v1/predictions/{id}``, ``/v1/trainings/{id}`` | Bearer | 404 / 410 |
| Suno-style | ``/api/v1/{generate,lyrics,wav}/record-info?taskId=`` | Bearer | never |
| Kling | ``/v1/videos/{text2video,image2video}/{id}``, ``/v1/images/generations/…`` | JWT | below |

Suno and Kling report call errors in an envelope ``code``, often inside an HTTP 200. Such a
code describes the call, never the task, so it is never handed to the classifier (an
envelope "401" would otherwise refund a job that succeeded): it becomes the matching error,
and an answer holding no task is ``Unclassifiable``. The sweep then polls again later and
refunds at the hard deadline.

- Suno: codes 405 / 430 (rate limits), 455 (maintenance) and 5xx are retried; 401 is
  ``ProviderAuthFailed``; other codes are ``ProviderRequestRejected``. A 404 is documented
  as "invalid method or path", and no answer is documented for an unknown task: a 404, in the
  body or as the HTTP status, is never ``JobGone`` but ``ProviderRequestRejected``. The
  stem and MIDI record-info answers are not shaped like what the classifier reads, so those
  operations are not polled (``NoStatusQuery``).
- Kling: the query path mirrors the creation path and there is no generic one, so a
  ``video`` task is looked for under ``text2video`` then ``image2video``: ``JobGone`` only when
  every candidate answers HTTP 404 / 410 or code 1203 ("requested resource does not exist").
  The codes are read from the one table of them, ``providers.kling.SERVICE_CODES``: the
  authentication codes are ``ProviderAuthFailed``; only rate limits and internal errors are
  retried, so the account codes that come with HTTP 429 (arrears, resource pack, IP
  whitelist) are not. The JWT (HS256, ``iss`` = access key, ``exp`` = now + 30
  min, ``nbf`` = now - 5 s) is signed afresh for every attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final, TypedDict, Unpack
from urllib.parse import quote

import httpx
import jwt

from ledger.errors import ConfigurationError, NoStatusQuery, Unclassifiable
from providers.common import as_int
from providers.kling import AUTH_CODES, GONE_CODES, RETRY_CODES, SERVICE_CODES
from providers.status_http import (
    JobGone,
    ProviderAuthFailed,
    ProviderRequestRejected,
    StatusClient,
    json_object,
    raise_for_status,
    retryable_status,
)
from providers.suno import RETRY_CODES as SUNO_RETRY_CODES

__all__ = [
    "KLING_BASE_URL",
    "REPLICATE_BASE_URL",
    "SUNO_BASE_URL",
    "HTTPOptions",
    "KlingPoller",
    "NoStatusQuery",
    "Poller",
    "ReplicatePoller",
    "SunoPoller",
]

REPLICATE_BASE_URL: Final = "https://api.replicate.com"
SUNO_BASE_URL: Final = "https://api.sunoapi.org"
KLING_BASE_URL: Final = "https://api-singapore.klingai.com"


class HTTPOptions(TypedDict, total=False):
    """Retry budget and transport of a poller's :class:`StatusClient`."""

    max_attempts: int
    max_wait_s: float
    backoff_base_s: float
    timeout_s: float
    client: httpx.Client | None


class Poller:
    """One provider's status poller: a ``JobFetcher`` that can also use the operation."""

    name: ClassVar[str]

    def __init__(self, http: StatusClient) -> None:
        self._http = http

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._http.base_url!r})"

    def __enter__(self) -> Poller:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __call__(self, provider: str, job_id: str) -> dict[str, Any]:
        """``JobFetcher``: the job's status answer, polled without knowing its operation."""
        return self.poll(provider, job_id, None)

    def poll(self, provider: str, job_id: str, operation: str | None) -> dict[str, Any]:
        """The job's status answer as the provider's classifier reads it."""
        if provider != self.name:
            raise ConfigurationError("a poller of another provider", provider=provider)
        if not isinstance(job_id, str) or not job_id.strip():
            raise Unclassifiable("no job id to poll", provider=self.name)
        return self._poll(job_id, operation)

    def _poll(self, job_id: str, operation: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def _same_job(self, found: object, job_id: str) -> None:
        """Refuse an answer about another job (a proxy or cache gone wrong)."""
        if found not in (None, "", job_id):
            raise Unclassifiable(
                "the status answer is about another job",
                provider=self.name,
                job_id=job_id,
                answered_for=found,
            )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _envelope_code(response: httpx.Response) -> int | None:
    body = json_object(response)
    return as_int(body.get("code")) if body is not None else None


# --------------------------------------------------------------------------- Replicate


class ReplicatePoller(Poller):
    """``GET /v1/predictions/{id}``: the prediction object itself."""

    name = "replicate"

    def __init__(
        self, api_token: str, base_url: str = REPLICATE_BASE_URL, **options: Unpack[HTTPOptions]
    ) -> None:
        super().__init__(StatusClient(base_url, _bearer(api_token), **options))

    def _poll(self, job_id: str, operation: str | None) -> dict[str, Any]:
        kind = "trainings" if operation == "training" else "predictions"
        body = self._http.get_json(
            f"/v1/{kind}/{quote(job_id, safe='')}", provider=self.name, job_id=job_id
        )
        self._same_job(body.get("id"), job_id)
        return body


# --------------------------------------------------------------------------- Suno-style

SUNO_RECORDS: Final[dict[str, str]] = {
    "lyrics": "/api/v1/lyrics/record-info",
    "wav_export": "/api/v1/wav/record-info",
}
"""Record-info endpoint per operation; every other operation is a music task."""
SUNO_MUSIC_RECORD: Final = "/api/v1/generate/record-info"
SUNO_UNPOLLED: Final = frozenset({"stems", "midi_export"})
SUNO_AUTH_CODES: Final = frozenset({401})


def _suno_retryable(response: httpx.Response) -> bool:
    if retryable_status(response):
        return True
    code = _envelope_code(response) if response.status_code < 300 else None
    return code is not None and (code in SUNO_RETRY_CODES or code >= 500)


class SunoPoller(Poller):
    """``GET /api/v1/…/record-info?taskId=``: the record envelope, with the task in ``data``."""

    name = "suno"

    def __init__(
        self, api_key: str, base_url: str = SUNO_BASE_URL, **options: Unpack[HTTPOptions]
    ) -> None:
        http = StatusClient(base_url, _bearer(api_key), retryable=_suno_retryable, **options)
        super().__init__(http)

    def _poll(self, job_id: str, operation: str | None) -> dict[str, Any]:
        if operation in SUNO_UNPOLLED:
            raise NoStatusQuery(provider=self.name, operation=operation)
        path = SUNO_RECORDS.get(operation or "", SUNO_MUSIC_RECORD)
        try:
            body = self._http.get_json(path, {"taskId": job_id}, provider=self.name, job_id=job_id)
        except JobGone as gone:  # "invalid method or path": no proof that the task is gone
            raise ProviderRequestRejected(
                provider=self.name, job_id=job_id, status=gone.status
            ) from gone
        data = body.get("data")
        if isinstance(data, Mapping) and ("status" in data or "successFlag" in data):
            self._same_job(data.get("taskId"), job_id)
            return body
        code = as_int(body.get("code"))
        if code in SUNO_AUTH_CODES:
            raise ProviderAuthFailed(provider=self.name, code=code)
        if code is not None and code != 200:
            raise ProviderRequestRejected(provider=self.name, job_id=job_id, code=code)
        raise Unclassifiable("the record-info answer holds no task", provider=self.name)


# --------------------------------------------------------------------------- Kling

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
    code = _envelope_code(response)
    if code in KLING_FINAL_CODES:
        return False
    return retryable_status(response) or code in RETRY_CODES


class KlingPoller(Poller):
    """``GET /v1/videos/text2video/{id}`` (…): the ``{"code", "data": {task}}`` envelope."""

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
        return _bearer(token)

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
        code = _envelope_code(response)
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
