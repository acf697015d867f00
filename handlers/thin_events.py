"""Thin webhook events: results that name a job without saying how it ended.

OpenAI's ``video.completed`` / ``video.failed`` events carry only the video id. Before such
an event is classified, the job it names is fetched (through the ``JobFetcher`` the caller
passes: the handler does no I/O of its own) and the job itself is classified:

- the job is found: classified by the provider's adapter like any other payload;
- the job is gone upstream (HTTP 404 / 410): ``failed``, refunded through the ledger;
- the job is still pending although the event says it ended: ``JobNotFinished``, retried.

Without a fetcher, a thin event is classified as it stands (the behaviour before fetching).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ledger.errors import JobNotFinished, ResultForAnotherJob, Unclassifiable
from ledger.outcomes import Outcome
from providers import openai_api
from providers.base import Classification
from providers.registry import classify

__all__ = ["THIN_EVENTS", "JobFetcher", "JobNotFinished", "Resolved", "resolve"]

JobFetcher = Callable[[str, str], Mapping[str, Any]]
"""``(provider, job_id) -> the job's full payload``; raises ``JobGone`` for a gone job."""

THIN_EVENTS: Final[Mapping[str, Callable[[object], str | None]]] = {
    "openai": openai_api.thin_event_job_id,
}
"""Provider → the function that returns the job id of a thin event (``None`` otherwise)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """A provider result ready to classify: the payload reported, or the job it names."""

    provider: str
    payload: Mapping[str, Any]
    event_job_id: str | None = None
    """The job id of the thin event this payload was fetched for, if any."""
    gone: Classification | None = None
    """The outcome of a job that is gone upstream: there is no payload left to classify."""

    def classify(self, operation: str | None) -> Classification:
        """Classify the payload for ``operation``, or return the gone job's outcome."""
        if self.gone is not None:
            return self.gone
        classification = classify(self.provider, self.payload, operation)
        if self.event_job_id is not None and classification.outcome is Outcome.PENDING:
            raise JobNotFinished(
                provider=self.provider,
                provider_job_id=self.event_job_id,
                reason=classification.reason,
            )
        return classification


def resolve(
    provider: str,
    payload: Mapping[str, Any],
    fetch_job: JobFetcher | None,
    *,
    charged_job_id: str | None = None,
) -> Resolved:
    """The payload to classify: ``payload`` itself, or the job a thin event names.

    With ``charged_job_id`` (the job charged for the generation the result was reported
    for), a thin event naming another job raises ``ResultForAnotherJob`` before anything is
    fetched.
    """
    recognise = THIN_EVENTS.get(provider)
    job_id = recognise(payload) if recognise is not None else None
    if job_id is None or fetch_job is None:
        return Resolved(provider, payload)
    if charged_job_id and job_id != charged_job_id:
        raise ResultForAnotherJob(charged_job_id=charged_job_id, reported_job_id=job_id)
    try:
        job = fetch_job(provider, job_id)
    except openai_api.JobGone as gone:
        reason = f"job gone upstream (HTTP {gone.status})"
        return Resolved(provider, payload, job_id, Classification(Outcome.FAILED, reason, job_id))
    if not isinstance(job, Mapping):
        raise Unclassifiable(
            "the fetched job is not a JSON object", provider=provider, job_id=job_id
        )
    fetched_id = job.get("id")
    if fetched_id != job_id:
        raise Unclassifiable(
            "the fetched job is another job than the event's",
            provider=provider,
            event_job_id=job_id,
            fetched_job_id=fetched_id,
        )
    return Resolved(provider, job, job_id)
