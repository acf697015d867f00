"""The delivery identity of a reported event: what makes a redelivery recognisable.

Providers and Stripe deliver at least once: Stripe retries a webhook for up to three days
(https://docs.stripe.com/webhooks/process-undelivered-events), Standard Webhooks senders
retry with the same ``webhook-id`` (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md),
and pipelines report the same result again after a crash. The inbox keeps each identity
under a unique constraint, so a second delivery is known before anything is applied.

The identity, first that applies:

1. the ``webhook-id`` header of a Standard Webhooks delivery, when the caller has it;
2. a Stripe event's ``id`` (``evt_…``), and an OpenAI webhook event's ``id``;
3. otherwise the provider's job id and the outcome the payload reports
   (``<job id>:<outcome>``): the same job reported failed twice is one delivery, while a
   contradicting outcome for the same job is a new one (the ledger keeps it as a conflict).

A payload with none of these (unclassifiable, or no job id) has no identity: each
delivery is kept, and the ledger's idempotency keys still apply its effect at most once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.errors import Unclassifiable
from providers.registry import classify

__all__ = ["delivery_key"]

_EVENT_ID_PROVIDERS = frozenset({"stripe", "openai"})


def delivery_key(
    provider: str,
    payload: Mapping[str, Any],
    *,
    operation: str | None = None,
    webhook_id: str | None = None,
) -> str | None:
    """The event's delivery identity (see the module docstring), or ``None``."""
    if webhook_id:
        return f"webhook:{webhook_id}"
    event_id = payload.get("id")
    if (
        provider in _EVENT_ID_PROVIDERS
        and isinstance(event_id, str)
        and event_id.startswith("evt_")
    ):
        return f"event:{event_id}"
    if provider == "stripe":
        return None
    try:
        classification = classify(provider, payload, operation)
    except Unclassifiable:
        return None
    if classification.provider_job_id is None:
        return None
    return f"job:{classification.provider_job_id}:{classification.outcome.value}"
