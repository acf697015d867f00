"""The delivery identity of a reported event: what makes a redelivery recognisable.

Providers and Stripe deliver at least once: Stripe retries a webhook for up to three days
(https://docs.stripe.com/webhooks/process-undelivered-events), Standard Webhooks senders
retry with the same ``webhook-id`` (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md),
and pipelines report the same result again after a crash. The inbox keeps each identity
under a unique constraint, so a second delivery is known before anything is applied.

The identity is what the event itself says, never how it travelled, so that one delivery
is known as one whichever door it comes through (the webhook ingress, the pipeline's
``workers.client``) and counted the same way. First that applies:

1. a Stripe event's ``id`` (``evt_…``), and an OpenAI webhook event's ``id``;
2. the provider's job id and the outcome the payload reports (``<job id>:<outcome>``):
   the same job reported failed twice is one delivery, while a contradicting outcome for
   the same job is a new one (the ledger keeps it as a conflict). fal's job id is its
   request id;
3. only for a payload that names neither, the transport's delivery id when the caller has
   one (a Standard Webhooks ``webhook-id``, fal's request id header): its retries at least
   are recognised.

The job id is taken exactly as the payload writes it (never trimmed: `` p-1`` is not
``p-1``). A report naming the generation it is for (``generation_id``) carries it in its
identity (``gen:<generation id>:…``): two generations' reports are never one delivery.

A payload with none of these (unclassifiable, or no job id, through a door without a
delivery id) has no identity: each delivery is kept, and the ledger's idempotency keys
still apply its effect at most once.
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
    generation_id: str | None = None,
) -> str | None:
    """The event's delivery identity (see the module docstring), or ``None``.

    ``payload`` is the event as kept (a JSON object); ``webhook_id`` the transport's
    delivery id, used only when the payload names no event or job; ``generation_id`` the
    generation the report is for, when the caller names one.
    """
    identity = _payload_identity(provider, payload, operation) or (
        f"webhook:{webhook_id}" if webhook_id else None
    )
    if identity is None or generation_id is None:
        return identity
    return f"gen:{generation_id}:{identity}"


def _payload_identity(
    provider: str, payload: Mapping[str, Any], operation: str | None
) -> str | None:
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
