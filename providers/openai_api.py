"""OpenAI Videos API over HTTP: fetch the video object a thin webhook event names.

Pure I/O, no classification (that is ``providers/openai.py``). ``video.completed`` and
``video.failed`` events carry only ``data.id``; :class:`VideosClient` fetches
``GET {base}/videos/{id}`` so the job itself can be classified.

Retries (tenacity): 408, 409, 429, 5xx and transport errors or timeouts, bounded attempts,
exponential backoff with jitter; a ``retry-after-ms``, ``Retry-After`` (seconds or HTTP date)
or ``openai-poll-after-ms`` header sets the next wait instead, capped by ``max_wait_s``.
Errors, under ``RefundryError``::

    RefundryError
    ├── ProviderUnavailable         transient: the retry budget was spent (dramatiq retries later)
    ├── ProviderAuthFailed          permanent: 401 / 403, the API key is refused
    ├── ProviderRequestRejected     permanent: any other 4xx
    └── JobGone                     permanent: 404 / 410, the job (or the API) is gone upstream

The Sora 2 Videos API is being shut down: a gone job is a ``failed`` outcome, never retried.
The API key is sent in the ``Authorization`` header only, never logged nor put in an error.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Mapping
from datetime import UTC
from typing import Any, Final
from urllib.parse import quote

import httpx
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
)

from ledger.errors import RefundryError, Unclassifiable

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "EVENT_TYPES",
    "JobGone",
    "ProviderAuthFailed",
    "ProviderRequestRejected",
    "ProviderUnavailable",
    "VideosClient",
    "thin_event_job_id",
]

log = logging.getLogger(__name__)

PROVIDER: Final = "openai"
DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
DEFAULT_TIMEOUT: Final = httpx.Timeout(10.0, connect=5.0)
EVENT_TYPES: Final = frozenset({"video.completed", "video.failed"})
RETRY_STATUSES: Final = frozenset({408, 409, 429})
GONE_STATUSES: Final = frozenset({404, 410})
AUTH_STATUSES: Final = frozenset({401, 403})


class ProviderUnavailable(RefundryError):
    """The provider's API did not answer usefully within the retry budget."""


class ProviderAuthFailed(RefundryError):
    """The provider refused the API key."""

    permanent = True


class ProviderRequestRejected(RefundryError):
    """The provider refused the request with a client error no retry can fix."""

    permanent = True


class JobGone(RefundryError):
    """The job, or the whole API, is gone upstream."""

    permanent = True

    def __init__(self, *, provider: str, job_id: str, status: int) -> None:
        super().__init__(provider=provider, job_id=job_id, status=status)
        self.provider = provider
        self.job_id = job_id
        self.status = status


def thin_event_job_id(payload: object) -> str | None:
    """The video id of a thin ``video.completed`` / ``video.failed`` event, else ``None``."""
    if not isinstance(payload, Mapping) or payload.get("type") not in EVENT_TYPES:
        return None
    data = payload.get("data")
    video_id = data.get("id") if isinstance(data, Mapping) else None
    return video_id if isinstance(video_id, str) and video_id.strip() else None


class VideosClient:
    """``GET /videos/{id}`` with bounded, jittered retries that honour the server's hints."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        client: httpx.Client | None = None,
        max_attempts: int = 5,
        max_wait_s: float = 30.0,
        backoff_base_s: float = 0.5,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._owns_client = client is None
        self._client = httpx.Client(timeout=DEFAULT_TIMEOUT) if client is None else client
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.backoff_base_s = backoff_base_s

    def __repr__(self) -> str:
        return f"VideosClient({self.base_url!r})"

    def __enter__(self) -> VideosClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this object built it (an injected one is the caller's)."""
        if self._owns_client:
            self._client.close()

    def retrieve(self, video_id: str) -> dict[str, Any]:
        """The video object for ``video_id``, as parsed JSON.

        Raises ``JobGone`` (404/410), ``ProviderAuthFailed`` (401/403),
        ``ProviderRequestRejected`` (other 4xx), ``ProviderUnavailable`` (retries spent) and
        ``Unclassifiable`` (a 200 whose body is not a JSON object).
        """
        if not isinstance(video_id, str) or not video_id:
            raise Unclassifiable("no video id to fetch", provider=PROVIDER)
        url = f"{self.base_url}/videos/{quote(video_id, safe='')}"
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(httpx.TransportError) | retry_if_result(_retryable),
            before_sleep=lambda state: _log_retry(state, video_id, self.max_attempts),
        )
        try:
            response = retrying(self._get, url)
        except RetryError as spent:
            raise _unavailable(
                spent, video_id, self.max_attempts
            ) from spent.last_attempt.exception()
        return _parse(response, video_id)

    def _get(self, url: str) -> httpx.Response:
        return self._client.get(
            url, headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        )

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            hinted = _server_hint_s(outcome.result().headers)
            if hinted is not None:
                return min(hinted, self.max_wait_s)
        exponential = self.backoff_base_s * 2.0 ** min(state.attempt_number - 1, 32)
        return min(exponential + random.uniform(0, self.backoff_base_s), self.max_wait_s)


def _server_hint_s(headers: httpx.Headers) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, ``Retry-After`` (seconds or an
    HTTP date) or ``openai-poll-after-ms``, in that order; ``None`` without a usable hint."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        seconds = _seconds(headers.get(name), scale)
        if seconds is not None:
            return seconds
    date = _http_date_s(headers.get("retry-after"))
    if date is not None:
        return date
    return _seconds(headers.get("openai-poll-after-ms"), 1000.0)


def _seconds(raw: str | None, scale: float) -> float | None:
    try:
        value = float(raw) / scale if raw is not None else None
    except ValueError:
        return None
    if value is None or value != value or value < 0 or value == float("inf"):
        return None
    return value


def _http_date_s(raw: str | None) -> float | None:
    if not raw:
        return None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


def _retryable(response: httpx.Response) -> bool:
    return response.status_code in RETRY_STATUSES or response.status_code >= 500


def _log_retry(state: RetryCallState, video_id: str, max_attempts: int) -> None:
    outcome = state.outcome
    if outcome is None:
        return
    what = _describe(outcome.exception(), None if outcome.failed else outcome.result())
    wait_s = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning(
        "GET /videos/%s: %s; retry in %.2f s (attempt %d of %d)",
        video_id,
        what,
        wait_s,
        state.attempt_number,
        max_attempts,
    )


def _describe(exc: BaseException | None, response: httpx.Response | None) -> str:
    if response is not None:
        return f"HTTP {response.status_code}"
    return exc.__class__.__name__ if exc is not None else "no answer"


def _unavailable(spent: RetryError, video_id: str, attempts: int) -> ProviderUnavailable:
    last = spent.last_attempt
    response = None if last.failed else last.result()
    return ProviderUnavailable(
        provider=PROVIDER,
        job_id=video_id,
        attempts=attempts,
        last=_describe(last.exception(), response),
    )


def _parse(response: httpx.Response, video_id: str) -> dict[str, Any]:
    status = response.status_code
    if status in GONE_STATUSES:
        raise JobGone(provider=PROVIDER, job_id=video_id, status=status)
    if status in AUTH_STATUSES:
        raise ProviderAuthFailed(provider=PROVIDER, status=status)
    if status >= 400:
        raise ProviderRequestRejected(
            provider=PROVIDER, job_id=video_id, status=status, code=_error_code(response)
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise Unclassifiable(
            "the video response is not a JSON object", provider=PROVIDER, job_id=video_id
        )
    return body


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None
