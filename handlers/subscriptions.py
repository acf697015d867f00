"""A subscription charge made after the subscription's confirmed cancellation is refunded, once.

Stripe does not order events, so each side is remembered when it arrives and checked against
the other: a cancellation refunds every recorded charge of its subscription paid after it,
and a paid invoice is refunded at once if its subscription's cancellation is already known
and came first. A charge paid before (or at) the cancellation is kept. A scheduled
cancellation (``cancel_at_period_end``) changes nothing: the subscription still runs. Both
sides are confirmed at the payment provider first (``handlers.confirmation``): a cancellation
or an invoice Stripe does not confirm refunds nothing.

The refund goes through ``refunding`` → ``refunded`` around the provider's call, with a key
derived from the PaymentIntent, so a rerun after Stripe refunded but before the ledger wrote
it gets the same refund back. Our reason, ``after_cancellation``, is not one Stripe accepts:
it is sent without a Stripe ``reason`` and kept in the refund's metadata
(``providers.stripe_api.STRIPE_REASONS``).
"""

from __future__ import annotations

import logging
from typing import Final, Protocol

from handlers.confirmation import confirm_subscription_event
from handlers.payments import PaymentGateway, processed_alone
from ledger import Ledger
from ledger.subscriptions import Cancellation, SubscriptionCharge
from providers.stripe_subscriptions import InvoicePaid, SubscriptionCancelled

__all__ = ["REFUND_REASON", "SubscriptionGateway", "apply_subscription_event"]

log = logging.getLogger(__name__)

REFUND_REASON: Final = "after_cancellation"


class SubscriptionGateway(PaymentGateway, Protocol):
    """The payment provider's API as the subscription handler needs it."""

    def invoice_payment_intents(self, invoice_id: str) -> list[str]: ...


def apply_subscription_event(
    ledger: Ledger,
    event: SubscriptionCancelled | InvoicePaid,
    *,
    gateway: SubscriptionGateway,
    inbox_id: str | None = None,
) -> str:
    """Apply one subscription event, as the payment provider's API confirms it
    (``handlers.confirmation``); returns a short description of what it did.

    ``inbox_id``, the event's inbox row, is marked processed in the same transaction as the
    event's last effect (the last charge it settles), or on its own when it changes nothing.
    Raises ``NotAtPaymentProvider`` / ``EventNotConfirmed`` (permanent, nothing applied) and
    the provider's API errors.
    """
    event = confirm_subscription_event(event, gateway)
    if isinstance(event, InvoicePaid):
        return _invoice_paid(ledger, event, gateway, inbox_id)
    if not event.confirmed:
        processed_alone(ledger, inbox_id)
        ends = "at the period's end" if event.cancel_at_period_end else "later"
        return f"subscription {event.subscription_id}: cancellation scheduled {ends}, nothing to do"
    assert event.cancelled_at is not None  # the parser refuses a confirmed one without it
    cancellation, charges = ledger.subscriptions.record_cancellation(
        subscription_id=event.subscription_id,
        customer=event.customer,
        cancelled_at_ms=event.cancelled_at * 1000,
        inbox_id=inbox_id,
    )
    last = len(charges) - 1
    said = [
        _settle(ledger, charge, cancellation, gateway, inbox_id if n == last else None)
        for n, charge in enumerate(charges)
    ]
    refunded = sum(s.endswith(": refunded") for s in said)
    return (
        f"subscription {event.subscription_id} cancelled: {refunded} charge(s) refunded, "
        f"{len(said) - refunded} otherwise settled"
    )


def _invoice_paid(
    ledger: Ledger, event: InvoicePaid, gateway: SubscriptionGateway, inbox_id: str | None
) -> str:
    if event.subscription_id is None:
        processed_alone(ledger, inbox_id)
        return f"invoice {event.invoice_id}: of no subscription, ignored"
    charge, cancellation = ledger.subscriptions.record_charge(
        invoice_id=event.invoice_id,
        subscription_id=event.subscription_id,
        customer=event.customer,
        payment_intent=event.payment_intent,
        amount=event.amount_paid,
        currency=event.currency,
        paid_at_ms=event.paid_at * 1000,
        inbox_id=inbox_id,
    )
    if cancellation is None:
        return f"invoice {event.invoice_id}: recorded, its subscription is not cancelled"
    return _settle(ledger, charge, cancellation, gateway, inbox_id)


def _settle(
    ledger: Ledger,
    charge: SubscriptionCharge,
    cancellation: Cancellation,
    gateway: SubscriptionGateway,
    inbox_id: str | None,
) -> str:
    """Keep a charge paid before the cancellation; refund one paid after it (or resume a
    refund begun by an earlier run). ``inbox_id`` is processed with the decision."""
    invoice = charge.invoice_id
    if charge.state == "refunded":
        processed_alone(ledger, inbox_id)
        return f"invoice {invoice}: already refunded"
    when = (
        f"paid at {charge.paid_at_ms} ms, {cancellation.subscription_id} cancelled at "
        f"{cancellation.cancelled_at_ms} ms"
    )
    if charge.state == "kept" and not charge.paid_after(cancellation):
        reason = f"{when}: paid before the cancellation"
        ledger.subscriptions.keep(invoice, reason=reason, inbox_id=inbox_id)
        return f"invoice {invoice}: kept"
    if charge.state == "kept" and charge.amount == 0:
        reason = f"{when}: nothing was charged"
        ledger.subscriptions.keep(invoice, reason=reason, inbox_id=inbox_id)
        return f"invoice {invoice}: kept (nothing charged)"
    intents = [charge.payment_intent] if charge.payment_intent else []
    if not intents:
        intents = gateway.invoice_payment_intents(invoice)
    if len(intents) != 1:
        why = f"{when}: paid after the cancellation through {len(intents)} payment intents"
        ledger.subscriptions.note(invoice, "alert", f"{why}; refund it by hand", inbox_id=inbox_id)
        log.error("invoice %s %s", invoice, why)
        return f"invoice {invoice}: alerted, not refunded"
    payment_intent = intents[0]
    key = ledger.subscriptions.begin_refund(
        invoice,
        payment_intent=payment_intent,
        reason=f"{when}: {REFUND_REASON}",
        inbox_id=inbox_id,
    )
    if key is None:
        return f"invoice {invoice}: already refunded"
    refund = gateway.refund_payment(
        payment_intent, amount=None, reason=REFUND_REASON, idempotency_key=key
    )
    ledger.subscriptions.confirm_refund(invoice, refund_id=str(refund["id"]), inbox_id=inbox_id)
    return f"invoice {invoice}: refunded"
