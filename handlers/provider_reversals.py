"""What Stripe already gave back for a purchase, read before reconciliation decides on it.

A refund made in the Dashboard leaves the session ``paid`` and the PaymentIntent
``succeeded``; a lost chargeback too. When their webhooks were lost, only the payment's own
refunds (``GET /v1/refunds?charge=…``, https://docs.stripe.com/api/refunds/list) and disputes
(``GET /v1/disputes?charge=…``, https://docs.stripe.com/api/disputes/list) tell of them. Each
is recorded as a reversal keyed by its id, the same key its webhook would have used, so
nothing is taken twice whichever tells first.

A chargeback still open (``needs_response``, ``under_review``) holds the decision: its funds
are withdrawn, Stripe refuses a refund while it lasts (``charge_disputed``), and whether the
money comes back is not known until it closes. An inquiry (``warning_*``) withdraws nothing
(https://docs.stripe.com/disputes/how-disputes-work).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from handlers.purchase_refunds import RefundGateway, charge_of
from ledger import Ledger
from ledger.payments import Payment, Reversal

__all__ = [
    "AtProvider",
    "DisputeSource",
    "Synced",
    "read_reversals",
    "record_charge_refunds",
    "refund_reversal",
    "sync_pending_refunds",
    "sync_reversals",
]

OPEN_CHARGEBACK: Final = frozenset({"needs_response", "under_review"})
"""Dispute statuses of a chargeback not decided yet (https://docs.stripe.com/api/disputes/object)."""


class DisputeSource(RefundGateway, Protocol):
    """What reading a payment's reversals needs of the payment provider's API."""

    def charge_disputes(self, charge_id: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class AtProvider:
    """What Stripe gave back for a purchase: its charge (``None``: none yet), each refund and
    lost dispute as a reversal, the id of a chargeback still open and that of one closed (won
    or lost), each ``None`` when there is none. A charge charged back can never be refunded
    (``charge_disputed``)."""

    charge_id: str | None
    reversals: list[Reversal]
    open_dispute: str | None
    closed_chargeback: str | None = None

    @property
    def given_back(self) -> int:
        """The money that went back (minor unit): refunds that succeeded, disputes lost."""
        return sum(r.amount for r in self.reversals if r.state == "succeeded")


@dataclass(frozen=True, slots=True)
class Synced:
    """The purchase after its reversals at Stripe were recorded, the id of a chargeback
    still open on its charge and that of one closed (won or lost), each ``None`` when there
    is none."""

    payment: Payment
    open_dispute: str | None
    closed_chargeback: str | None = None


def sync_reversals(ledger: Ledger, source: DisputeSource, p: Payment) -> Synced:
    """Record every refund that succeeded and every dispute lost on the purchase's charge, each
    by its id, and tell whether a chargeback is still open. Raises the provider's errors."""
    found = read_reversals(source, p)
    if found.reversals:
        ledger.payments.record_reversals(
            p.purchase_key,
            found.reversals,
            charge_id=found.charge_id,
            reason="reversed at the provider",
        )
    return Synced(
        ledger.payments.get(p.purchase_key) or p, found.open_dispute, found.closed_chargeback
    )


def read_reversals(source: DisputeSource, p: Payment) -> AtProvider:
    """Read, writing nothing, the refunds and disputes of the purchase's charge
    (``GET /v1/refunds?charge=…``, ``GET /v1/disputes?charge=…``). Raises the provider's
    errors."""
    charge_id = charge_of(source, p)
    if charge_id is None:
        return AtProvider(None, [], None)
    disputes = source.charge_disputes(charge_id)
    reversals = [refund_reversal(r) for r in source.charge_refunds(charge_id)]
    reversals += [
        Reversal(str(d["id"]), "dispute", int(d["amount"]))
        for d in disputes
        if d.get("status") == "lost"
    ]
    open_dispute = next((_id(d) for d in disputes if d.get("status") in OPEN_CHARGEBACK), None)
    closed = next((_id(d) for d in disputes if d.get("status") in ("won", "lost")), None)
    return AtProvider(charge_id, reversals, open_dispute, closed)


def refund_reversal(refund: Mapping[str, Any]) -> Reversal:
    """A Stripe refund as a reversal of its payment, by its id, amount (minor unit) and state:
    ``succeeded``; ``pending`` or ``requires_action`` (not money back yet); ``failed`` or
    ``canceled`` (never money back, or taken back: https://docs.stripe.com/refunds#failed-refunds)."""
    status = refund.get("status")
    state = _REFUND_STATES.get(status if isinstance(status, str) else "", "pending")
    return Reversal(str(refund["id"]), "refund", int(refund["amount"]), state)


def record_charge_refunds(
    ledger: Ledger,
    purchase_key: str,
    charge_id: str,
    source: RefundGateway,
    *,
    reason: str,
    amount: int | None = None,
    inbox_id: str | None = None,
) -> int:
    """Read every refund of a charge from the API (an event only hints at them) and record
    each by its id and state: a claw-back for one that succeeded, credits back for one that
    failed after it had. Remembered even before the purchase is known. Returns the credits
    clawed back now (negative: given back). Raises the provider's errors."""
    reversals = [refund_reversal(r) for r in source.charge_refunds(charge_id)]
    return ledger.payments.record_reversals(
        purchase_key,
        reversals,
        reason=reason,
        amount=amount,
        charge_id=charge_id,
        inbox_id=inbox_id,
    )


def sync_pending_refunds(ledger: Ledger, source: RefundGateway) -> int:
    """Read again the refunds still ``pending`` at Stripe (a ``charge.refunded`` told of them
    before they succeeded; ``refund.updated`` may never come, if not subscribed): each that
    succeeded since takes its claw-back. Returns how many purchases were read."""
    pending = ledger.payments.with_pending_refunds()
    for p in pending:
        charge_id = charge_of(source, p)
        if charge_id is not None:
            record_charge_refunds(
                ledger, p.purchase_key, charge_id, source, reason="pending refund read again"
            )
    return len(pending)


_REFUND_STATES = {
    "succeeded": "succeeded",
    "pending": "pending",
    "requires_action": "pending",
    "failed": "failed",
    "canceled": "failed",
}
"""Stripe's refund statuses (https://docs.stripe.com/api/refunds/object) → reversal states;
a status not listed here is taken as not money back yet."""


def _id(obj: Mapping[str, Any]) -> str:
    return str(obj["id"])
