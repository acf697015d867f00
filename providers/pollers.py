"""Status pollers: ask the provider that runs a job how it stands (the stuck-generation sweep).

This module holds what every poller shares; each provider's poller lives beside its
classifier, in the provider's module (``providers.replicate.ReplicatePoller``,
``providers.suno.SunoPoller``, ``providers.kling.KlingPoller``; OpenAI's in
``providers.openai_api``), so that what a status query answers and how it is read are
decided in one place.

Pure I/O over :class:`~providers.status_http.StatusClient` (retries, ``Retry-After``, the
error classes), no classification: each poller returns the JSON its provider's classifier
reads. Every poller is a ``JobFetcher`` (``poller(provider, job_id)``) and also has
``poll(provider, job_id, operation)``: the generation's operation picks the endpoint where
the API has several.

| provider | status query (``GET``) | auth | ``JobGone`` |
| --- | --- | --- | --- |
| Replicate | ``/v1/predictions/{id}``, ``/v1/trainings/{id}`` | Bearer | 404 / 410 |
| Suno-style | ``/api/v1/{generate,lyrics,wav}/record-info?taskId=`` | Bearer | never |
| Kling | ``/v1/videos/{text2video,image2video}/{id}``, ``/v1/images/…`` | JWT | 404 / 410 / 1203 |

Suno and Kling report call errors in an envelope ``code``, often inside an HTTP 200. Such a
code describes the call, never the task, so it is never handed to the classifier (an
envelope "401" would otherwise refund a job that succeeded): it becomes the matching error,
and an answer holding no task is ``Unclassifiable``. The sweep then polls again later and
refunds at the hard deadline.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypedDict

import httpx

from ledger.errors import ConfigurationError, NoStatusQuery, Unclassifiable
from providers.common import as_int
from providers.status_http import (
    StatusClient,
    json_object,
)

__all__ = ["HTTPOptions", "NoStatusQuery", "Poller", "bearer", "envelope_code"]


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


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header of a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def envelope_code(response: httpx.Response) -> int | None:
    """The ``code`` of a JSON envelope answer (Suno, Kling), if it has one."""
    body = json_object(response)
    return as_int(body.get("code")) if body is not None else None
