"""Reconciliation: the payment provider's own objects compared with the ledger.

Events can be lost or never created, so the sweep lists the provider's completed Checkout
Sessions and succeeded PaymentIntents of the window (not the event feed), merges what they
say into the ledger, and settles every purchase paid longer ago than the landing window
that has not landed: ``complete`` grants it now, ``refund`` gives the money back. Purchases
stuck ``refunding`` (a refund call that timed out) are retried with the same key. Two runs
at once are safe: every step is keyed and locked in the ledger, and the provider's
idempotency key makes a repeated refund call return the first refund.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from handlers.packs import PackCatalog, PackUnknown, PaymentPolicy
from handlers.payments import PaymentGateway, land, observe, refund_purchase
from ledger import Ledger, now_ms
from ledger.payments import Payment
from providers.stripe import CheckoutSession, PaymentSucceeded, parse_event

__all__ = ["ReconcileSource", "Reconciliation", "reconcile"]

log = logging.getLogger(__name__)


class ReconcileSource(PaymentGateway, Protocol):
    def list_paid_sessions(self, created_gte: int) -> Iterator[dict[str, Any]]: ...

    def list_succeeded_payment_intents(self, created_gte: int) -> Iterator[dict[str, Any]]: ...


@dataclass
class Reconciliation:
    seen: int = 0
    decisions: list[dict[str, str]] = field(default_factory=list)

    def decide(self, purchase_key: str, action: str, why: str) -> None:
        self.decisions.append({"purchase": purchase_key, "action": action, "why": why})


def _as_event(obj: Mapping[str, Any], event_type: str) -> CheckoutSession | PaymentSucceeded:
    """Read a listed provider object through the same parser as its webhook event."""
    event = parse_event(
        {
            "id": f"reconcile:{obj.get('id')}",
            "type": event_type,
            "created": obj.get("created"),
            "data": {"object": obj},
        }
    )
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
    listed: list[CheckoutSession | PaymentSucceeded] = [
        *(_as_event(s, "checkout.session.completed") for s in source.list_paid_sessions(since_s)),
        *(
            _as_event(p, "payment_intent.succeeded")
            for p in source.list_succeeded_payment_intents(since_s)
        ),
    ]
    report.seen = len(listed)
    for event in listed:
        if dry_run:
            continue
        try:
            observe(ledger, event, catalog)
        except PackUnknown as exc:
            log.error("reconcile: %s", exc.reason)
            report.decide(event.event_id, "alert", exc.reason)
    due = ledger.payments.unlanded(paid_before_ms=now - policy.landing_window_ms)
    for p in due:
        _settle_unlanded(ledger, source, p, policy, dry_run, report)
    return report


def _settle_unlanded(
    ledger: Ledger,
    source: ReconcileSource,
    p: Payment,
    policy: PaymentPolicy,
    dry_run: bool,
    report: Reconciliation,
) -> None:
    if p.state == "refunding":  # a refund call that never confirmed: same key again
        report.decide(p.purchase_key, "refund", "refund started but never confirmed")
        if not dry_run:
            refund_purchase(ledger, p, reason=p.refund_reason or "retry", gateway=source)
        return
    action = policy.unlanded_action
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
    else:
        refund_purchase(ledger, p, reason="unlanded_pack", gateway=source)
