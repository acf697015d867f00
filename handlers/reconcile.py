"""Reconciliation: the payment provider's own objects compared with the ledger.

Events can be lost or never created, so the sweep reads the provider's objects: the Checkout
Sessions and PaymentIntents made in the window and those its events say were paid in it,
each stamped with when it was paid (``handlers.paid_purchases``); it merges what they say
into the ledger, reads again the refunds still pending at Stripe, and settles every purchase
paid longer ago than the landing window that has not landed, once what Stripe already gave
back for it (refunds, lost disputes) is recorded (``handlers.provider_reversals``):
``complete`` grants it now, ``refund`` gives the money back, and an open chargeback waits
until it closes; once closed, Stripe refuses any refund of the charge, so it is completed.
Purchases stuck ``refunding`` are carried on (``handlers.purchase_refunds``). Two runs at
once are safe: every step is keyed and locked in the ledger, and the provider's idempotency
key makes a repeated refund call return the first refund. Each decision is reported once per
run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from handlers.packs import PackCatalog, PaymentPolicy
from handlers.paid_purchases import PaidSource, paid_purchases
from handlers.payments import PaymentGateway, land
from handlers.provider_reversals import DisputeSource, sync_pending_refunds, sync_reversals
from handlers.purchase_refunds import refund_purchase
from handlers.purchases import observe, read_purchase
from ledger import Ledger, now_ms
from ledger.errors import RefundryError
from ledger.payments import Payment
from providers.stripe import CheckoutSession, PaymentSucceeded, from_api_object, purchase_key

__all__ = ["ReconcileSource", "Reconciliation", "reconcile"]

log = logging.getLogger(__name__)


class ReconcileSource(PaymentGateway, PaidSource, DisputeSource, Protocol):
    """What reconciliation needs of the payment provider's API (``providers.stripe_api``)."""


@dataclass
class Reconciliation:
    seen: int = 0
    decisions: list[dict[str, str]] = field(default_factory=list)

    def decide(self, purchase_key: str, action: str, why: str) -> bool:
        """Report one decision, once per run (the same purchase can be listed twice: its
        session and its PaymentIntent); False when it was reported already."""
        decision = {"purchase": purchase_key, "action": action, "why": why}
        if decision in self.decisions:
            return False
        self.decisions.append(decision)
        return True


def _as_event(obj: Mapping[str, Any], event_type: str) -> CheckoutSession | PaymentSucceeded:
    """Read a listed provider object through the same parser as its webhook event."""
    event = from_api_object(event_type, obj)
    assert isinstance(event, CheckoutSession | PaymentSucceeded)
    return event


def reconcile(
    ledger: Ledger,
    source: ReconcileSource,
    *,
    catalog: PackCatalog,
    policy: PaymentPolicy,
    since_s: int,
    dry_run: bool = False,
    at_ms: int | None = None,
) -> Reconciliation:
    now = now_ms() if at_ms is None else at_ms
    report = Reconciliation()
    listed = paid_purchases(
        source, since_s, paid_time_known=lambda key: _paid_time_known(ledger, key)
    )
    report.seen = len(listed)
    paid_before = now - policy.landing_window_ms
    if dry_run:
        _report_unrecorded(ledger, listed, paid_before, policy, report)
    else:
        sync_pending_refunds(ledger, source)
        for event in listed:
            try:
                observe(ledger, event, catalog, source)
            except RefundryError as exc:  # a price outside the catalog, an outage: the rest go on
                key = purchase_key(event) or event.event_id
                if report.decide(key, "alert", exc.reason):
                    log.error("reconcile: purchase %s: %s", key, exc.reason)
    for p in ledger.payments.unlanded(paid_before_ms=paid_before):
        try:
            _settle_unlanded(ledger, source, catalog, p, policy, dry_run, report)
        except RefundryError as exc:  # one purchase the provider refuses must not stop the rest
            report.decide(p.purchase_key, "alert", exc.reason)
            ledger.payments.note(p.purchase_key, "alert", f"reconcile failed: {exc.reason}")
            log.error("reconcile: purchase %s: %s", p.purchase_key, exc.reason)
    return report


def _paid_time_known(ledger: Ledger, purchase_key: str) -> bool:
    known = ledger.payments.get(purchase_key)
    return known is not None and known.paid_at_ms is not None


def _report_unrecorded(
    ledger: Ledger,
    listed: list[CheckoutSession | PaymentSucceeded],
    paid_before_ms: int,
    policy: PaymentPolicy,
    report: Reconciliation,
) -> None:
    """Dry run: the paid purchases the provider lists that the ledger has never heard of,
    past the landing window, as the real run would settle them."""
    reported: set[str] = set()
    for event in listed:
        key = purchase_key(event)
        paid = (
            event.paid
            if isinstance(event, CheckoutSession)
            else event.metadata_price_id is not None
        )
        if (
            key is None
            or key in reported
            or not paid
            or event.created * 1000 >= paid_before_ms
            or ledger.payments.get(key) is not None
        ):
            continue
        reported.add(key)
        report.decide(key, policy.unlanded_action, "paid, never recorded, past the landing window")


def _settle_unlanded(
    ledger: Ledger,
    source: ReconcileSource,
    catalog: PackCatalog,
    p: Payment,
    policy: PaymentPolicy,
    dry_run: bool,
    report: Reconciliation,
) -> None:
    decided_from = p.state  # every change below is a compare-and-set on it
    charged_back: str | None = None
    if not dry_run and p.state == "paid":
        synced = sync_reversals(ledger, source, p)
        p = synced.payment
        if p.amount and p.refunded_amount >= p.amount:
            report.decide(p.purchase_key, "refunded_at_provider", "money already given back")
            ledger.payments.mark_refunded_at_provider(
                p.purchase_key,
                reason="all its money went back at the provider (refunds, lost disputes)",
                expected_state=decided_from,
            )
            return
        if synced.open_dispute is not None:
            why = f"chargeback {synced.open_dispute} open: decided when it closes"
            report.decide(p.purchase_key, "wait", why)
            ledger.payments.note(p.purchase_key, "wait", why, once=True)
            return
        charged_back = synced.closed_chargeback
    if p.state == "refunding":  # a refund call that never confirmed: same key again
        report.decide(p.purchase_key, "refund", "refund started but never confirmed")
        if not dry_run:
            reason = p.refund_reason or "retry"
            refund_purchase(ledger, p, reason=reason, gateway=source, expected_state="refunding")
        return
    action = policy.unlanded_action
    if p.purchase_key == p.session_id:  # no_payment_required: no money to give back
        action = "complete"
    if ledger.payments.reopened(p.purchase_key):
        action = "complete"  # paid again after a refund failed: it lands, as its events do
    if charged_back is not None:
        # Stripe refuses any refund of a charge charged back (``charge_disputed``,
        # https://docs.stripe.com/error-codes#charge-disputed): the closed dispute decided
        # where the money is, and what stayed with the merchant is the customer's pack.
        action = "complete"
    if action == "complete" and not dry_run and (p.account_id is None or p.credits is None):
        p = _read_again(ledger, source, catalog, p)
    if action == "complete" and (p.account_id is None or p.credits is None):
        why = "paid but the account or the pack is unknown: cannot complete"
        report.decide(p.purchase_key, "alert", why)
        if not dry_run:
            ledger.payments.note(p.purchase_key, "alert", why)
            log.error("reconcile: purchase %s %s", p.purchase_key, why)
        return
    why = f"not landed within {policy.landing_window_ms // 1000} s of payment"
    report.decide(p.purchase_key, action, why)
    if dry_run:
        return
    if action == "complete":
        land(ledger, p, gateway=source, policy=policy)
    elif not refund_purchase(
        ledger, p, reason="unlanded_pack", gateway=source, expected_state=decided_from
    ):
        report.decide(
            p.purchase_key, "kept", f"no longer {decided_from} when it was to be refunded"
        )


def _read_again(
    ledger: Ledger, source: ReconcileSource, catalog: PackCatalog, p: Payment
) -> Payment:
    """A paid purchase whose account or pack is still unknown (its session's event was lost,
    or read before its pack could be): read its PaymentIntent and Checkout Session from the
    provider again, as a ``payment_intent.succeeded`` would."""
    if p.purchase_key == p.session_id:  # keyed by its session: no PaymentIntent to read
        return p
    return read_purchase(ledger, p.purchase_key, catalog, source) or p
