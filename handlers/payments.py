"""What each payment event means for the credits, and doing it exactly once.

A paid purchase lands its pack once (``ledger.payments`` keys it by the PaymentIntent); a
second identical purchase within the duplicate window is refunded as ``duplicate`` instead;
money that goes back (a refund, a lost dispute) takes its share of the pack back; an early
fraud warning refunds and revokes, by policy; a failed refund raises an alert.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from handlers.packs import PackCatalog, PaymentPolicy
from handlers.purchases import CheckoutSource, observe
from ledger import Ledger
from ledger.payments import GrantResult, Payment
from providers.stripe import (
    ChargeRefunded,
    CheckoutSession,
    DisputeClosed,
    EarlyFraudWarning,
    PaymentEvent,
    PaymentSucceeded,
    RefundUpdated,
)

__all__ = ["PaymentGateway", "apply_payment_event", "land", "refund_purchase"]

log = logging.getLogger(__name__)


class PaymentGateway(CheckoutSource, Protocol):
    """What the handlers need of the payment provider's API (``providers.stripe_api``): read
    purchases (``handlers.purchases``) and refund them."""

    def refund_payment(
        self, payment_intent: str, *, amount: int | None, reason: str, idempotency_key: str
    ) -> Mapping[str, Any]: ...


def apply_payment_event(
    ledger: Ledger,
    event: PaymentEvent,
    *,
    catalog: PackCatalog,
    gateway: PaymentGateway,
    policy: PaymentPolicy,
) -> str:
    """Apply one payment event; returns a short description of what it did."""
    if isinstance(event, CheckoutSession | PaymentSucceeded):
        seen = observe(ledger, event, catalog, gateway)
        if seen is None:
            return f"{event.type} of no pack purchase: ignored"
        if seen.state != "paid":
            return f"purchase {seen.purchase_key}: {seen.state}, nothing to grant"
        return land(ledger, seen, gateway=gateway, policy=policy)
    if isinstance(event, ChargeRefunded):
        p = _purchase_of(ledger, event.payment_intent, event.charge_id)
        key = p.purchase_key if p else event.payment_intent
        if key is None:
            return "refund of a charge with no payment intent: ignored"
        # Remembered even when the purchase is not known yet: events arrive in any order.
        taken = ledger.payments.record_refund(
            key,
            refunded_total=event.amount_refunded,
            amount=event.amount,
            charge_id=event.charge_id,
            reason=f"charge refunded ({event.event_id})",
        )
        return f"purchase {key}: {taken} credits clawed back"
    if isinstance(event, DisputeClosed):
        p = _purchase_of(ledger, event.payment_intent, event.charge)
        if p is None or event.status != "lost":
            return f"dispute {event.status}: nothing to claw back"
        lost = min(p.refunded_amount + event.amount, p.amount or event.amount)
        taken = ledger.payments.record_refund(
            p.purchase_key, refunded_total=lost, reason=f"dispute {event.dispute_id} lost"
        )
        return f"purchase {p.purchase_key}: {taken} credits clawed back (dispute lost)"
    if isinstance(event, EarlyFraudWarning):
        p = _purchase_of(ledger, event.payment_intent, event.charge)
        if p is None:
            return "fraud warning on a charge that bought no pack: ignored"
        if policy.fraud_action == "alert":
            ledger.payments.note(p.purchase_key, "alert", f"early fraud warning {event.warning_id}")
            log.error("early fraud warning on purchase %s", p.purchase_key)
            return f"purchase {p.purchase_key}: fraud warning alerted"
        refund_purchase(ledger, p, reason="early_fraud_warning", gateway=gateway)
        return f"purchase {p.purchase_key}: refunded and revoked (early fraud warning)"
    if isinstance(event, RefundUpdated):
        if event.status in ("failed", "canceled"):
            key = event.payment_intent or event.refund_id
            ledger.payments.note(
                key,
                "alert",
                f"refund {event.refund_id} {event.status}: "
                f"{event.failure_reason or 'no reason given'}",
            )
            log.error("refund %s %s (%s)", event.refund_id, event.status, event.failure_reason)
            return f"refund {event.refund_id} {event.status}: alerted"
        return f"refund {event.refund_id} {event.status}"
    return f"{event.type}: ignored"


def land(ledger: Ledger, p: Payment, *, gateway: PaymentGateway, policy: PaymentPolicy) -> str:
    """Grant a paid purchase's pack, unless it duplicates a purchase just granted: then its
    money goes back with reason ``duplicate``."""
    result = ledger.payments.grant(
        p.purchase_key, reason=f"pack {p.price_id}", duplicate_window_ms=policy.duplicate_window_ms
    )
    if result is GrantResult.DUPLICATE:
        refund_purchase(ledger, p, reason="duplicate", gateway=gateway)
        return f"purchase {p.purchase_key}: duplicate, refunded"
    if result is GrantResult.INCOMPLETE:
        log.info("purchase %s paid but not complete yet (account or pack unknown)", p.purchase_key)
    return f"purchase {p.purchase_key}: {result.value}"


def refund_purchase(ledger: Ledger, p: Payment, *, reason: str, gateway: PaymentGateway) -> None:
    """Give a purchase's money back, once, and claw back any credits it landed.

    The provider call carries a key derived from the purchase: a rerun after the call
    succeeded but before the ledger recorded it gets the same refund back, not a second one.
    """
    key = ledger.payments.begin_refund(p.purchase_key, reason=reason)
    if key is None:
        return
    refund = gateway.refund_payment(p.purchase_key, amount=None, reason=reason, idempotency_key=key)
    ledger.payments.confirm_refund(p.purchase_key, refund_id=str(refund["id"]))


def _purchase_of(ledger: Ledger, payment_intent: str | None, charge: str | None) -> Payment | None:
    if payment_intent:
        found = ledger.payments.get(payment_intent)
        if found:
            return found
    return ledger.payments.by_charge(charge) if charge else None
