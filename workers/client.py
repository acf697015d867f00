"""The pipeline-facing API: what a generation pipeline calls. These names are a contract.

Every function reads ``DATABASE_URL`` and ``REDIS_URL`` like the worker does. ``charge``,
``grant`` and ``balance`` are synchronous ledger operations; ``report_result`` enqueues the
provider's result for the workers and returns the message id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from handlers.intake import new_event, record_and_enqueue
from handlers.webhook_verification import split_secrets, verify_stripe
from ledger.errors import Unclassifiable, UnknownProvider
from providers.registry import get_adapter
from providers.stripe import parse_event
from providers.stripe_subscriptions import parse_subscription_event
from workers import runtime

__all__ = [
    "balance",
    "charge",
    "grant",
    "report_payment",
    "report_result",
    "report_stripe_webhook",
]


def grant(*, account_id: str, credits: int, idempotency_key: str, reason: str) -> int:
    """Add credits once per ``idempotency_key``; returns the new balance."""
    return runtime.ledger().grant(
        account_id=account_id, credits=credits, idempotency_key=idempotency_key, reason=reason
    )


def charge(
    *,
    generation_id: str,
    account_id: str,
    provider: str,
    operation: str,
    credits: int,
    provider_job_id: str | None = None,
) -> int:
    """Debit a generation's credits, idempotent on ``generation_id``; returns the balance.

    Raises ``InsufficientCredits`` rather than overdraw, ``UnknownProvider`` for a provider
    Refundry cannot classify (its results could never be refunded).
    """
    get_adapter(provider)
    deadline = runtime.deadlines().for_generation(provider, operation)
    return runtime.ledger().charge(
        generation_id=generation_id,
        account_id=account_id,
        provider=provider,
        operation=operation,
        credits=credits,
        provider_job_id=provider_job_id,
        poll_after_ms=deadline.poll_after_ms,
        deadline_after_ms=deadline.hard_ms,
    )


def report_result(
    *,
    provider: str,
    payload: dict[str, Any],
    generation_id: str | None = None,
    operation: str | None = None,
) -> str:
    """Enqueue a provider's result; returns the message id (a redelivery of a result already
    reported returns the first delivery's id and enqueues nothing; see
    ``providers.deliveries``).

    Without ``generation_id`` the generation is found through the provider job id recorded
    at charge time. The event is written to the ledger's inbox before it is enqueued, so
    it is applied even if the broker loses the message. An unknown provider or a payload
    that is not a JSON object is refused here, at once, with nothing recorded.
    """
    get_adapter(provider)
    if not isinstance(payload, Mapping):
        raise Unclassifiable(
            "payload must be a JSON object", provider=provider, type=type(payload).__name__
        )
    try:
        body = json.loads(json.dumps(payload))
    except (TypeError, ValueError) as exc:
        raise Unclassifiable("payload is not JSON-serialisable", provider=provider) from exc
    return _record_and_enqueue("result", provider, body, generation_id, operation)


def report_payment(*, provider: str, event: dict[str, Any]) -> str:
    """Enqueue a payment webhook event the platform has already received and verified;
    returns the message id. The pack of a paid purchase lands once, however many times and
    in whatever order its events arrive. An unknown provider or an unreadable event is
    refused here, at once, with nothing recorded."""
    if provider != "stripe":
        raise UnknownProvider(provider=provider)
    parse_event(event)  # raises PayloadUnreadable naming the missing field
    parse_subscription_event(event)  # the same, for the subscription events
    return _record_and_enqueue("payment", provider, dict(event), None, None)


def report_stripe_webhook(*, payload: bytes, signature: str | None) -> str:
    """For a platform that forwards Stripe's webhook as received: verify the body against its
    ``Stripe-Signature`` header with ``STRIPE_WEBHOOK_SECRET`` (comma-separated during a
    rotation: any one verifies; a wrong secret, a forged or garbled header, or a timestamp
    more than five minutes old or ahead is refused with ``SignatureInvalid``, nothing
    recorded), then report it like ``report_payment``."""
    secrets = split_secrets(runtime.settings().stripe_webhook_secret)  # several: a rotation
    event = verify_stripe(payload, signature, secrets)
    return report_payment(provider="stripe", event=event)


def balance(account_id: str) -> int:
    """The account's current balance (0 for an account never seen)."""
    return runtime.ledger().balance(account_id)


def _record_and_enqueue(
    kind: str,
    provider: str,
    body: dict[str, Any],
    generation_id: str | None,
    operation: str | None,
) -> str:
    event = new_event(
        kind=kind,
        provider=provider,
        payload=body,
        generation_id=generation_id,
        operation=operation,
    )
    recorded = record_and_enqueue(runtime.ledger().inbox, _enqueue, event)
    return recorded.id


def _enqueue(kind: str, inbox_id: str) -> None:
    from workers.actors import enqueue_event  # the broker is built on first use

    enqueue_event(kind, inbox_id)
