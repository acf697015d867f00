"""The pipeline-facing API: what a generation pipeline calls. These names are a contract.

Every function reads ``DATABASE_URL`` and ``REDIS_URL`` like the worker does. ``charge``,
``grant`` and ``balance`` are synchronous ledger operations; ``report_result`` enqueues the
provider's result for the workers and returns the message id.

Every argument is checked first, by the rules every door shares (``workers.validation``):
bad input raises an ``InvalidInput`` naming the argument (``InvalidAmount`` for credits,
``InvalidIdentifier`` for ids and keys, ``UnknownOperation``, ``InvalidPayload``) or
``UnknownProvider``, and nothing is stored. A ledger that cannot be reached raises
``LedgerUnavailable``.
"""

from __future__ import annotations

from typing import Any

from handlers.credit_kinds import lot_terms
from handlers.intake import new_event, record_and_enqueue
from handlers.webhook_verification import split_secrets, verify_stripe
from ledger.clock import now_ms
from ledger.errors import InvalidLotTerms
from providers.stripe import parse_event
from providers.stripe_subscriptions import parse_subscription_event
from workers import runtime, validation

__all__ = [
    "balance",
    "charge",
    "grant",
    "report_payment",
    "report_result",
    "report_stripe_webhook",
]

#: The payment providers ``report_payment`` accepts events from.
PAYMENT_PROVIDERS: tuple[str, ...] = ("stripe",)


def grant(
    *,
    account_id: str,
    credits: int,
    idempotency_key: str,
    reason: str,
    credit_kind: str = "promo",
    subscription_id: str | None = None,
    cycle_ends_at_ms: int | None = None,
) -> int:
    """Add ``credits`` (a whole number) once per ``idempotency_key``; returns the new balance.

    The credits are of ``credit_kind`` (a kind of the policy version in force now: by
    default ``subscription``, ``pack``, ``promo``), with that kind's expiry fixed on them:
    ``cycle_end`` kinds need ``cycle_ends_at_ms`` (ms since the epoch), and the
    ``after_cancellation`` kinds ``subscription_id`` (their clock starts when that
    subscription's cancellation is recorded).

    Raises ``IdempotencyConflict`` when the key was already used with other inputs,
    ``InvalidLotTerms`` for a kind the policy does not name or a missing or unneeded
    argument.
    """
    account_id = validation.identifier(account_id, field="account_id")
    credits = validation.credits(credits)
    idempotency_key = validation.identifier(idempotency_key, field="idempotency_key")
    reason = validation.text(reason, field="reason")
    subscription_id = validation.optional_identifier(subscription_id, field="subscription_id")
    if cycle_ends_at_ms is not None and (
        isinstance(cycle_ends_at_ms, bool) or not isinstance(cycle_ends_at_ms, int)
    ):
        raise InvalidLotTerms("ms since the epoch, a whole number", field="cycle_ends_at_ms")
    rules = runtime.policy_book().at(now_ms()).rules
    terms = lot_terms(
        rules.credit_kinds,
        credit_kind,
        subscription_id=subscription_id,
        cycle_ends_at_ms=cycle_ends_at_ms,
    )
    return runtime.ledger().grant(
        account_id=account_id,
        credits=credits,
        idempotency_key=idempotency_key,
        reason=reason,
        terms=terms,
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
    """Debit a generation's credits (a whole number), idempotent on ``generation_id``;
    returns the balance.

    Raises ``InsufficientCredits`` rather than overdraw, ``UnknownProvider`` for a provider
    Refundry cannot classify (its results could never be refunded), ``UnknownOperation``
    for an operation outside ``providers.base.OPERATIONS``, ``IdempotencyConflict`` when the
    generation was already charged with other inputs.
    """
    generation_id = validation.identifier(generation_id, field="generation_id")
    account_id = validation.identifier(account_id, field="account_id")
    provider = validation.provider(provider)
    operation = validation.operation(operation)
    credits = validation.credits(credits)
    provider_job_id = validation.optional_job_id(provider_job_id, provider=provider)
    deadline = runtime.deadlines().for_generation(provider, operation)
    version = runtime.policy_book().at(now_ms())  # the version at its charge, by name
    return (
        runtime.ledger()
        .under(version.name)
        .charge(
            generation_id=generation_id,
            account_id=account_id,
            provider=provider,
            operation=operation,
            credits=credits,
            provider_job_id=provider_job_id,
            poll_after_ms=deadline.poll_after_ms,
            deadline_after_ms=deadline.hard_ms,
            mode=version.rules.charge_mode,
        )
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
    it is applied even if the broker loses the message. An unknown provider, a payload that
    is not a strict JSON object within the caps (``InvalidPayload``), or a malformed id or
    operation is refused here, at once, with nothing recorded.
    """
    provider = validation.provider(provider)
    body = validation.payload(payload)
    generation_id = validation.optional_identifier(generation_id, field="generation_id")
    operation = validation.optional_operation(operation)
    return _record_and_enqueue("result", provider, body, generation_id, operation)


def report_payment(*, provider: str, event: dict[str, Any]) -> str:
    """Enqueue a payment webhook event the platform has already received and verified;
    returns the message id. The pack of a paid purchase lands once, however many times and
    in whatever order its events arrive. An unknown provider, an event that is not a strict
    JSON object within the caps (``InvalidPayload``) or an unreadable event is refused here,
    at once, with nothing recorded."""
    provider = validation.provider(provider, known=PAYMENT_PROVIDERS)
    body = validation.payload(event, field="event")
    parse_event(body)  # raises PayloadUnreadable naming the missing field
    parse_subscription_event(body)  # the same, for the subscription events
    return _record_and_enqueue("payment", provider, body, None, None)


def report_stripe_webhook(*, payload: bytes, signature: str | None) -> str:
    """For a platform that forwards Stripe's webhook as received: verify the body against its
    ``Stripe-Signature`` header with ``STRIPE_WEBHOOK_SECRET`` (comma-separated during a
    rotation: any one verifies; a wrong secret, a forged or garbled header, or a timestamp
    more than five minutes old or ahead is refused with ``SignatureInvalid``, nothing
    recorded), then report it like ``report_payment``. A body that is not ``bytes`` (or a
    UTF-8 ``str``) or is over the payload size cap is refused with ``InvalidPayload``, and a
    signature that is not a string (or ``None``) with ``InvalidInput``, before anything is
    verified."""
    body = validation.raw_body(payload, field="payload")
    header = validation.signature_header(signature, field="signature")
    secrets = split_secrets(runtime.settings().stripe_webhook_secret)  # several: a rotation
    event = verify_stripe(body, header, secrets)
    return report_payment(provider="stripe", event=event)


def balance(account_id: str) -> int:
    """The account's current balance in credits (0 for an account never seen)."""
    return runtime.ledger().balance(validation.identifier(account_id, field="account_id"))


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
    recorded = record_and_enqueue(runtime.ledger().inbox, runtime.enqueue, event)
    return recorded.id
