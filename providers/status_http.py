"""Provider status APIs over HTTP: one retrying JSON ``GET`` that every status client shares.

Pure I/O, no classification (that is each provider's module). :class:`StatusClient` sends
``GET {base}{path}`` with the provider's auth headers and returns the final response, or its
JSON object through :meth:`StatusClient.get_json`.

Retries (tenacity): 408, 409, 429, 5xx and transport errors or timeouts, bounded attempts,
exponential backoff with jitter; a ``retry-after-ms``, ``Retry-After`` (seconds or HTTP date)
or ``openai-poll-after-ms`` header sets the next wait instead, capped by ``max_wait_s``. A
client may narrow or widen what is retried (``retryable``: a provider whose 429 can also mean
"out of credits", or whose errors arrive inside a 200). Errors, under ``RefundryError``::

    RefundryError
    ├── ProviderUnavailable         transient: the retry budget was spent (retried later)
    ├── ProviderAuthFailed          permanent: 401 / 403, the credentials are refused
    ├── ProviderRequestRejected     permanent: any other 4xx
    └── JobGone                     permanent: 404 / 410, the job (or the API) is gone upstream

Credentials are sent in headers only (built per attempt: a signed token may expire), never
logged nor put in an error.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any, Final

import httpx
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
)

from ledger.errors import (
    InvalidPayload,
    JobGone,
    ProviderAuthFailed,
    ProviderRequestRejected,
    ProviderUnavailable,
    Unclassifiable,
)
from providers.job_ids import check_job_id
from providers.json_bodies import decode_json

__all__ = [
    "AUTH_STATUSES",
    "GONE_STATUSES",
    "RETRY_STATUSES",
    "AuthHeaders",
    "JobGone",
    "ProviderAuthFailed",
    "ProviderRequestRejected",
    "ProviderUnavailable",
    "StatusClient",
    "error_code",
    "json_object",
    "raise_for_status",
    "retryable_status",
]

log = logging.getLogger(__name__)

RETRY_STATUSES: Final = frozenset({408, 409, 429})
GONE_STATUSES: Final = frozenset({404, 410})
AUTH_STATUSES: Final = frozenset({401, 403})

AuthHeaders = Mapping[str, str] | Callable[[], Mapping[str, str]]
"""Fixed headers, or a function that builds them for each attempt (a short-lived token)."""


def retryable_status(response: httpx.Response) -> bool:
    """The default retry rule: 408, 409, 429 and every 5xx."""
    return response.status_code in RETRY_STATUSES or response.status_code >= 500


class StatusClient:
    """``GET`` with bounded, jittered retries that honour the server's hints."""

    def __init__(
        self,
        base_url: str,
        auth_headers: AuthHeaders,
        *,
        max_attempts: int = 5,
        max_wait_s: float = 30.0,
        backoff_base_s: float = 0.5,
        timeout_s: float = 10.0,
        client: httpx.Client | None = None,
        retryable: Callable[[httpx.Response], bool] = retryable_status,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._auth_headers = auth_headers
        self._owns_client = client is None
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
        self._client = httpx.Client(timeout=timeout) if client is None else client
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.backoff_base_s = backoff_base_s
        self._retryable = retryable

    def __repr__(self) -> str:
        return f"StatusClient({self.base_url!r})"

    def __enter__(self) -> StatusClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this object built it (an injected one is the caller's)."""
        if self._owns_client:
            self._client.close()

    def get(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        provider: str,
        job_id: str,
    ) -> httpx.Response:
        """The last response to ``GET {base}{path}`` once it is not worth retrying.

        Raises ``ProviderUnavailable`` when every attempt failed or asked to be retried, and
        ``InvalidJobId`` before any request when ``job_id`` is not of a documented shape.
        """
        check_job_id(provider, job_id)
        url = f"{self.base_url}/{path.lstrip('/')}"
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(httpx.TransportError) | retry_if_result(self._retryable),
            before_sleep=lambda state: _log_retry(state, path, provider, self.max_attempts),
        )
        try:
            return retrying(self._get, url, params)
        except RetryError as spent:
            last = spent.last_attempt
            raise ProviderUnavailable(
                provider=provider,
                job_id=job_id,
                attempts=self.max_attempts,
                last=_describe(last.exception(), None if last.failed else last.result()),
            ) from last.exception()

    def get_json(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        provider: str,
        job_id: str,
    ) -> dict[str, Any]:
        """The JSON object of a successful ``GET``; every other answer raises.

        Raises ``JobGone`` (404/410), ``ProviderAuthFailed`` (401/403),
        ``ProviderRequestRejected`` (other 4xx), ``ProviderUnavailable`` (retries spent) and
        ``Unclassifiable`` (a 2xx whose body is not a JSON object).
        """
        response = self.get(path, params, provider=provider, job_id=job_id)
        raise_for_status(response, provider=provider, job_id=job_id)
        body = json_object(response)
        if body is None:
            raise Unclassifiable(
                "the status response is not a JSON object", provider=provider, job_id=job_id
            )
        return body

    def _get(self, url: str, params: Mapping[str, str] | None) -> httpx.Response:
        auth = self._auth_headers() if callable(self._auth_headers) else self._auth_headers
        headers = {**auth, "Accept": "application/json"}
        return self._client.get(url, params=dict(params) if params else None, headers=headers)

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            hinted = _server_hint_s(outcome.result().headers)
            if hinted is not None:
                return min(hinted, self.max_wait_s)
        exponential = self.backoff_base_s * 2.0 ** min(state.attempt_number - 1, 32)
        return min(exponential + random.uniform(0, self.backoff_base_s), self.max_wait_s)


def raise_for_status(
    response: httpx.Response, *, provider: str, job_id: str, code: object = None
) -> None:
    """Raise the error a 4xx or 5xx answer means; a 2xx or 3xx passes."""
    status = response.status_code
    if status in GONE_STATUSES:
        raise JobGone(provider=provider, job_id=job_id, status=status)
    if status in AUTH_STATUSES:
        raise ProviderAuthFailed(provider=provider, status=status)
    if status >= 500:
        raise ProviderUnavailable(
            provider=provider, job_id=job_id, attempts=1, last=f"HTTP {status}"
        )
    if status >= 400:
        raise ProviderRequestRejected(
            provider=provider,
            job_id=job_id,
            status=status,
            code=error_code(response) if code is None else code,
        )


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The response body if it is a JSON object, else ``None``: read by the decoder every
    door uses (``providers.json_bodies``), so a body nested past the recursion limit, holding
    a number Python will not convert or text that is not UTF-8 is no answer, not a crash."""
    try:
        body = decode_json(response.content, field="response")
    except InvalidPayload:
        return None
    return body if isinstance(body, dict) else None


def error_code(response: httpx.Response) -> str | int | None:
    """The provider's own error code in a body: ``error.code`` (OpenAI) or ``code``."""
    body = json_object(response) or {}
    error = body.get("error")
    nested = error.get("code") if isinstance(error, dict) else None
    for code in (nested, body.get("code")):
        if isinstance(code, str | int) and not isinstance(code, bool):
            return code
    return None


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


def _log_retry(state: RetryCallState, path: str, provider: str, max_attempts: int) -> None:
    outcome = state.outcome
    if outcome is None:
        return
    what = _describe(outcome.exception(), None if outcome.failed else outcome.result())
    wait_s = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning(
        "%s GET %s: %s; retry in %.2f s (attempt %d of %d)",
        provider,
        path,
        what,
        wait_s,
        state.attempt_number,
        max_attempts,
    )


def _describe(exc: BaseException | None, response: httpx.Response | None) -> str:
    if response is None:
        return exc.__class__.__name__ if exc is not None else "no answer"
    if response.status_code < 400:  # an error inside a 2xx: name the body's own code
        code = error_code(response)
        if code is not None:
            return f"HTTP {response.status_code} code {code}"
    return f"HTTP {response.status_code}"
