"""OpenAI Videos API over HTTP: fetch the video object a thin webhook event names.

Pure I/O, no classification (that is ``providers/openai.py``). ``video.completed`` and
``video.failed`` events carry only ``data.id``; :class:`VideosClient` fetches
``GET {base}/videos/{id}`` so the job itself can be classified.

Retries, server wait hints and errors are those of :mod:`providers.status_http` (re-exported
here): ``ProviderUnavailable`` (transient: retries spent), ``ProviderAuthFailed`` (401 / 403),
``ProviderRequestRejected`` (other 4xx) and ``JobGone`` (404 / 410). The Sora 2 Videos API is
being shut down: a gone job is a ``failed`` outcome, never retried. The API key is sent in
the ``Authorization`` header only, never logged nor put in an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import httpx

from ledger.errors import Unclassifiable
from providers.status_http import (
    JobGone,
    ProviderAuthFailed,
    ProviderRequestRejected,
    ProviderUnavailable,
    StatusClient,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "EVENT_TYPES",
    "JobGone",
    "ProviderAuthFailed",
    "ProviderRequestRejected",
    "ProviderUnavailable",
    "VideosClient",
    "thin_event_job_id",
]

PROVIDER: Final = "openai"
DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
EVENT_TYPES: Final = frozenset({"video.completed", "video.failed"})


def thin_event_job_id(payload: object) -> str | None:
    """The video id of a thin ``video.completed`` / ``video.failed`` event, else ``None``."""
    if not isinstance(payload, Mapping):
        return None
    kind = payload.get("type")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:  # any JSON: a list is unhashable
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
        timeout_s: float = 10.0,
    ) -> None:
        self._http = StatusClient(
            base_url,
            {"Authorization": f"Bearer {api_key}"},
            max_attempts=max_attempts,
            max_wait_s=max_wait_s,
            backoff_base_s=backoff_base_s,
            timeout_s=timeout_s,
            client=client,
        )

    @property
    def base_url(self) -> str:
        return self._http.base_url

    @property
    def max_attempts(self) -> int:
        return self._http.max_attempts

    @property
    def max_wait_s(self) -> float:
        return self._http.max_wait_s

    @property
    def backoff_base_s(self) -> float:
        return self._http.backoff_base_s

    def __repr__(self) -> str:
        return f"VideosClient({self.base_url!r})"

    def __enter__(self) -> VideosClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this object built it (an injected one is the caller's)."""
        self._http.close()

    def retrieve(self, video_id: str) -> dict[str, Any]:
        """The video object for ``video_id``, as parsed JSON.

        Raises ``JobGone`` (404/410), ``ProviderAuthFailed`` (401/403),
        ``ProviderRequestRejected`` (other 4xx), ``ProviderUnavailable`` (retries spent) and
        ``Unclassifiable`` (a 200 whose body is not a JSON object).
        """
        if not isinstance(video_id, str) or not video_id:
            raise Unclassifiable("no video id to fetch", provider=PROVIDER)
        return self._http.get_json(
            f"/videos/{quote(video_id, safe='')}", provider=PROVIDER, job_id=video_id
        )
