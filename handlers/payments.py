"""What each payment event means for the credits, and doing it exactly once.

A paid purchase lands its pack once (``ledger.payments`` keys it by the PaymentIntent); a
second identical purchase within the duplicate window is refunded as ``duplicate`` instead;
money that goes back takes its share of the pack back, once per cause (a refund by its id, a
lost dispute by its id, whichever event tells of it); an early fraud warning refunds and
revokes, by policy, even when it comes before the purchase's own events (the purchase is then
read from the API); a failed refund raises an alert. A refund decided from a purchase's state
happens only if the purchase is still in that state. Every event is first confirmed at the
payment provider (``handlers.confirmation``): what it posted is only a hint.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from handlers.alerts import alert
from handlers.confirmation import EventSource, confirm_payment_event
from handlers.packs import PackCatalog, PaymentPolicy
from handlers.provider_reversals import record_charge_refunds
from handlers.purchase_refunds import refund_later_duplicates, refund_purchase
from handlers.purchases import CheckoutSource, observe, read_purchase
from ledger import Ledger
from ledger.payments import GrantResult, Payment, Reversal
from providers.stripe import (
    ChargeRefunded,
    CheckoutSession,
    DisputeClosed,
    EarlyFraudWarning,
    PaymentEvent,
    PaymentSucceeded,
    RefundUpdated,
)

__all__ = [
    "PaymentGateway",
    "apply_payment_event",
    "land",
    "processed_alone",
    "refund_purchase",
]

log = logging.getLogger(__name__)


class PaymentGateway(EventSource, CheckoutSource, Protocol):
    """What the handlers need of the payment provider's API (``providers.stripe_api``): confirm
    events (``handlers.confirmation``), read purchases (``handlers.purchases``) and their
    refunds, and refund them."""

    def refund_payment(
        self, payment_intent: str, *, amount: int | None, reason: str, idempotency_key: str
    ) -> Mapping[str, Any]: ...

    def charge_refunds(self, charge_id: str) -> list[dict[str, Any]]: ...


def apply_payment_event(
    ledger: Ledger,
    event: PaymentEvent,
    *,
    catalog: PackCatalog,
    gateway: PaymentGateway,
    policy: PaymentPolicy,
    inbox_id: str | None = None,
) -> str:
    """Apply one payment event, as the payment provider's API confirms it; returns a short
    description of what it did.

    ``inbox_id``, the event's inbox row, is marked processed in the same transaction as the
    event's last effect (on its own when the event changes nothing). Raises
    ``NotAtPaymentProvider`` / ``EventNotConfirmed`` (permanent: the provider does not confirm
    the event, nothing is applied) and what the ledger and the provider's API raise:
    ``PackUnknown``, ``PaymentProviderUnavailable``…
    """
    event = confirm_payment_event(event, gateway)
    if isinstance(event, CheckoutSession | PaymentSucceeded):
        return _purchase(ledger, event, catalog, gateway, policy, inbox_id)
    if isinstance(event, ChargeRefunded):
        return _charge_refunded(ledger, event, gateway, policy, inbox_id)
    if isinstance(event, DisputeClosed):
        return _dispute_closed(ledger, event, inbox_id)
    if isinstance(event, EarlyFraudWarning):
        p = _purchase_of(ledger, event.payment_intent, event.charge)
        if p is None and event.payment_intent is not None:  # told before its purchase
            p = read_purchase(ledger, event.payment_intent, catalog, gateway)
        if p is not None:
            return _fraud_warning(ledger, event, p, gateway, policy, inbox_id)
    if isinstance(event, RefundUpdated):
        return _refund_updated(ledger, event, gateway, policy, inbox_id)
    processed_alone(ledger, inbox_id)
    return f"{event.type}: nothing to do"


def land(
    ledger: Ledger,
    p: Payment,
    *,
    gateway: PaymentGateway,
    policy: PaymentPolicy,
    inbox_id: str | None = None,
    why: str | None = None,
) -> str:
    """Grant a paid purchase's pack, unless it duplicates a purchase just granted: then its
    money goes back with reason ``duplicate``. ``why``: what led to the grant, recorded with
    it (reconciliation's unlanded-pack decision), when not the payment itself."""
    result = ledger.payments.grant(
        p.purchase_key,
        reason=f"pack {p.price_id}" + (f": {why}" if why else ""),
        duplicate_window_ms=policy.duplicate_window_ms or None,  # 0: the rule is off
        inbox_id=inbox_id,
    )
    if result is GrantResult.DUPLICATE:
        refund_purchase(
            ledger, p, reason="duplicate", gateway=gateway, expected_state="paid", inbox_id=inbox_id
        )
        return f"purchase {p.purchase_key}: duplicate, refunded"
    if result is GrantResult.SUPERSEDES:  # landed; the later twin that landed first goes back
        refund_later_duplicates(ledger, p, gateway=gateway, inbox_id=inbox_id)
        return f"purchase {p.purchase_key}: granted, its later duplicate refunded"
    if result is GrantResult.REFUNDING:  # a refund begun earlier and not confirmed: carry on
        refund_purchase(
            ledger,
            p,
            reason="retry",
            gateway=gateway,
            expected_state="refunding",
            inbox_id=inbox_id,
        )
        return f"purchase {p.purchase_key}: refund carried on"
    if result is GrantResult.INCOMPLETE:
        log.info("purchase %s paid but not complete yet (account or pack unknown)", p.purchase_key)
    return f"purchase {p.purchase_key}: {result.value}"


def _purchase(
    ledger: Ledger,
    event: CheckoutSession | PaymentSucceeded,
    catalog: PackCatalog,
    gateway: PaymentGateway,
    policy: PaymentPolicy,
    inbox_id: str | None,
) -> str:
    paid = not isinstance(event, CheckoutSession) or event.paid
    seen = observe(ledger, event, catalog, gateway, inbox_id=None if paid else inbox_id)
    if seen is None:
        processed_alone(ledger, inbox_id)
        return f"{event.type} of no pack purchase: ignored"
    if not paid:
        return f"purchase {seen.purchase_key}: {seen.state}, nothing to grant"
    return land(ledger, seen, gateway=gateway, policy=policy, inbox_id=inbox_id)


def _charge_refunded(
    ledger: Ledger,
    event: ChargeRefunded,
    gateway: PaymentGateway,
    policy: PaymentPolicy,
    inbox_id: str | None,
) -> str:
    """``charge.refunded`` tells only the running total: each refund is read from the API
    (``GET /v1/refunds?charge=…``) and reversed by its own id once it succeeded; one still
    pending is remembered and read again by reconciliation until it succeeds or fails. A
    purchase reopened by a refund's failure lands (:func:`_land_reopened`)."""
    p = _purchase_of(ledger, event.payment_intent, event.charge_id)
    key = p.purchase_key if p else event.payment_intent
    if key is None:
        processed_alone(ledger, inbox_id)
        return "refund of a charge with no payment intent: ignored"
    # Remembered even when the purchase is not known yet: events arrive in any order.
    taken = record_charge_refunds(
        ledger,
        key,
        event.charge_id,
        gateway,
        reason=f"charge refunded ({event.event_id})",
        amount=event.amount,
        inbox_id=inbox_id,
    )
    _land_reopened(ledger, key, gateway, policy)
    return f"purchase {key}: {taken} credits clawed back"


def _land_reopened(
    ledger: Ledger, purchase_key: str, gateway: PaymentGateway, policy: PaymentPolicy
) -> None:
    """A purchase refunded at the provider before its pack landed whose refund then failed
    is ``paid`` again (``Payments.reopened``): it lands now, as it would have had the failure
    been told before its purchase's events, so the credits do not depend on that order.
    Reconciliation lands it too, if this is interrupted."""
    if ledger.payments.reopened(purchase_key):
        p = ledger.payments.get(purchase_key)
        assert p is not None  # reopened: recorded
        land(ledger, p, gateway=gateway, policy=policy)


def _dispute_closed(ledger: Ledger, event: DisputeClosed, inbox_id: str | None) -> str:
    """A lost dispute (a chargeback) reverses its amount, keyed by the dispute's id; remembered
    even before the purchase is known. Won or closed as a warning: nothing moves."""
    p = _purchase_of(ledger, event.payment_intent, event.charge)
    key = p.purchase_key if p else event.payment_intent
    if event.status != "lost" or key is None:
        processed_alone(ledger, inbox_id)
        return f"dispute {event.status}: nothing to claw back"
    lost = Reversal(event.dispute_id, "dispute", event.amount)
    why = f"dispute {event.dispute_id} lost"
    taken = ledger.payments.record_reversals(key, [lost], reason=why, inbox_id=inbox_id)
    return f"purchase {key}: {taken} credits clawed back (dispute lost)"


def _fraud_warning(
    ledger: Ledger,
    event: EarlyFraudWarning,
    p: Payment,
    gateway: PaymentGateway,
    policy: PaymentPolicy,
    inbox_id: str | None,
) -> str:
    if policy.fraud_action == "alert":
        why = f"early fraud warning {event.warning_id}"
        ledger.payments.note(p.purchase_key, "alert", why, inbox_id=inbox_id)
        log.error("early fraud warning on purchase %s", p.purchase_key)
        return f"purchase {p.purchase_key}: fraud warning alerted"
    refund_purchase(
        ledger,
        p,
        reason="early_fraud_warning",
        gateway=gateway,
        expected_state=p.state,
        inbox_id=inbox_id,
    )
    return f"purchase {p.purchase_key}: refunded and revoked (early fraud warning)"


def _refund_updated(
    ledger: Ledger,
    event: RefundUpdated,
    gateway: PaymentGateway,
    policy: PaymentPolicy,
    inbox_id: str | None,
) -> str:
    """A refund changed state: the charge's refunds are read from the API and recorded as
    ``charge.refunded`` would (a claw-back once one succeeded; the credits back, keyed by the
    refund's id, when one failed after it had, unless we had refunded the purchase); a
    purchase it reopens lands; a failure or cancellation raises an alert."""
    p = _purchase_of(ledger, event.payment_intent, event.charge)
    key = p.purchase_key if p else event.payment_intent
    failed = event.status in ("failed", "canceled")
    if key is not None and event.charge is not None:
        why = f"refund {event.refund_id} {event.status} ({event.event_id})"
        done = None if failed else inbox_id
        taken = record_charge_refunds(ledger, key, event.charge, gateway, reason=why, inbox_id=done)
        _land_reopened(ledger, key, gateway, policy)
        if not failed:
            return f"purchase {key}: {taken} credits clawed back"
    if failed:
        why = f"refund {event.refund_id} {event.status}: {event.failure_reason or 'no reason'}"
        ledger.payments.note(key or event.refund_id, "alert", why, inbox_id=inbox_id)
        log.error(
            "refund %s %s (%s)",
            event.refund_id,
            event.status,
            event.failure_reason,
            extra={"purchase": key},
        )
        alert(
            "refund-failed",
            f"refund {event.status} at Stripe: {event.failure_reason or 'no reason'}",
            provider="stripe",
            reason=event.failure_reason or event.status,
            about={"purchase": key, "inbox_id": inbox_id},
        )
        return f"refund {event.refund_id} {event.status}: alerted"
    processed_alone(ledger, inbox_id)
    return f"refund {event.refund_id} {event.status}"


def processed_alone(ledger: Ledger, inbox_id: str | None) -> None:
    """An event that changes nothing is marked processed on its own (no-op for ``None``)."""
    if inbox_id is not None:
        ledger.inbox.mark_processed(inbox_id)


def _purchase_of(ledger: Ledger, payment_intent: str | None, charge: str | None) -> Payment | None:
    if payment_intent:
        found = ledger.payments.get(payment_intent)
        if found:
            return found
    return ledger.payments.by_charge(charge) if charge else None
