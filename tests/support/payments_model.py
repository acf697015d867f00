"""A plain model of what paid packs and subscription charges should come to, for the payments
state machine. It is written from the payment policy as the README, DESIGN and the payment
handlers' docstrings state it, and imports nothing of Refundry's.

The rules, in the model's own words:

- A pack lands once: when the first event telling that its purchase is paid is applied
  (``checkout.session.completed`` paid, ``payment_intent.succeeded``), or when
  reconciliation completes it past the landing window.
- It never lands when all its money went back before (refunds and lost disputes told), nor
  when it duplicates another purchase that landed: same customer, pack and amount, paid
  within the duplicate window of it, the other paid first. A duplicate's money goes back
  (our refund). When the other was paid later (it landed first), this one lands and the
  other is the duplicate: its money goes back and its credits with it.
- Money that goes back is told per cause (a refund, a lost dispute), each once, whichever
  event tells it: ``refund.*`` and ``charge.refunded`` tell every refund Stripe holds for
  the charge when it is applied, each as it stands then; ``charge.dispute.closed`` with
  ``lost`` tells the dispute's amount. A won dispute tells nothing.
- A refund that failed after it succeeded (https://docs.stripe.com/refunds#failed-refunds)
  is money back no more once that is told: a landed pack gets its share back. A pack that
  did not land because all its money had gone back lands when a failure leaves it not all
  back (as it would have, had the failure been told first). A purchase we refunded keeps
  nothing, whichever refund fails later.
- A landed pack keeps ``credits - credits * returned // amount`` (its proportional share
  taken back, rounded down), and nothing once all its money went back.
- Our own refund (a duplicate; an early fraud warning under ``refund_and_revoke``; an
  unlanded pack under ``refund``) gives all the money back and takes every credit back:
  the pack keeps nothing and never lands afterwards. Under ``alert`` a fraud warning moves
  nothing. Stripe refuses to refund a charge that was charged back (a dispute that is not an
  inquiry, open or closed): then our refund is not made and nothing moves.
- Reconciliation past the landing window first learns every refund Stripe holds and every
  dispute lost for each paid pack not landed, then settles it: all its money back, refunded
  already; else a chargeback still open waits until it closes; else ``complete`` lands it
  (by the rules above) or ``refund`` refunds it, unless the charge was charged back (the
  dispute closed: Stripe refuses the refund), which lands it.
- A subscription invoice paid strictly after its subscription's confirmed cancellation is
  refunded, once both are told, in either order; one paid at or before it is kept; a
  cancellation only scheduled changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Invoice", "Pack", "PaymentsModel", "StripeView"]

DUPLICATE_WINDOW_S = 600
"""The duplicate window of the policy's default (ten minutes)."""


class StripeView(Protocol):
    """What the model reads of Stripe as it is now (the fake's own objects), by charge id."""

    def refunds(self, charge: str) -> Mapping[str, tuple[int, str]]:
        """The charge's refunds: refund id → (amount, status)."""

    def lost_disputes(self, charge: str) -> Mapping[str, int]:
        """The charge's disputes closed ``lost``: dispute id → amount."""

    def charged_back(self, charge: str) -> bool:
        """Whether the charge has a chargeback (a dispute that is not an inquiry)."""

    def open_chargeback(self, charge: str) -> bool:
        """Whether the charge has a chargeback not decided yet."""


@dataclass
class Pack:
    """One pack purchase: its PaymentIntent ``key``, what it costs (``amount``, minor unit)
    and what it buys (``credits``), paid at ``paid_at`` (seconds)."""

    key: str
    account: str
    customer: str
    price: str
    credits: int
    amount: int
    paid_at: int
    charge: str
    session: str | None = None
    landed: bool = False
    refunded: bool = False
    """Its money went back in full before it landed, or by our refund: it never lands."""
    ours: bool = False
    """We refunded it: every credit it landed is taken back."""
    returned: dict[str, int] = field(default_factory=dict)
    """Each cause of money gone back that was told: refund or dispute id → amount."""

    def keeps(self) -> int:
        """The credits this purchase leaves on its account."""
        total = sum(self.returned.values())
        if not self.landed or self.ours or total >= self.amount:
            return 0
        return self.credits - self.credits * total // self.amount


@dataclass
class Invoice:
    id: str
    subscription: str
    payment_intent: str
    paid_at: int
    told: bool = False


class PaymentsModel:
    """The packs, subscriptions and invoices of one example, and what each should come to."""

    def __init__(self, stripe: StripeView, *, fraud_action: str, unlanded_action: str) -> None:
        self.stripe = stripe
        self.fraud_action = fraud_action
        self.unlanded_action = unlanded_action
        self.packs: dict[str, Pack] = {}
        self.invoices: dict[str, Invoice] = {}
        self.cancelled_at: dict[str, int] = {}
        """Each subscription whose confirmed cancellation was told → when it stopped."""

    # -- what the world did ------------------------------------------------------------------

    def bought(self, pack: Pack) -> None:
        self.packs[pack.key] = pack

    def invoiced(self, invoice: Invoice) -> None:
        self.invoices[invoice.id] = invoice

    # -- what should come of it --------------------------------------------------------------

    def balance(self, account: str) -> int:
        return sum(p.keeps() for p in self.packs.values() if p.account == account)

    def refunded_invoices(self) -> set[str]:
        return {
            i.id
            for i in self.invoices.values()
            if i.told
            and i.subscription in self.cancelled_at
            and i.paid_at > self.cancelled_at[i.subscription]
        }

    # -- an event applied ---------------------------------------------------------------------

    def told(self, event: Mapping[str, Any]) -> None:
        """One Stripe event applied (its first delivery that a worker processed)."""
        kind, obj = event["type"], event["data"]["object"]
        pack = self._pack_of(obj)
        if kind == "checkout.session.completed" and obj["payment_status"] == "paid":
            self._land(self._by_session(obj["id"]))
        elif kind == "payment_intent.succeeded" and pack is not None:
            self._land(pack)
        elif kind.startswith("refund.") and pack is not None:
            self._learn(pack, self.stripe.refunds(obj["charge"]))
        elif kind == "charge.refunded" and pack is not None:
            self._learn(pack, self.stripe.refunds(obj["id"]))
        elif kind == "charge.dispute.closed" and pack is not None and obj["status"] == "lost":
            pack.returned[obj["id"]] = obj["amount"]
        elif kind == "radar.early_fraud_warning.created" and pack is not None:
            if self.fraud_action == "refund_and_revoke":
                self._refund(pack)
        elif kind == "customer.subscription.deleted":
            stopped = obj["ended_at"] or obj["canceled_at"]
            earliest = min(stopped, self.cancelled_at.get(obj["id"], stopped))
            self.cancelled_at[obj["id"]] = earliest
        elif kind == "invoice.paid":
            self.invoices[obj["id"]].told = True

    def reconciled_past_window(self) -> None:
        """Reconciliation run once every pack is past its landing window."""
        for pack in sorted(self.packs.values(), key=lambda p: p.paid_at):
            if pack.landed or pack.refunded:
                continue
            pack.returned.update(self.stripe.lost_disputes(pack.charge))
            self._learn(pack, self.stripe.refunds(pack.charge))
            if sum(pack.returned.values()) >= pack.amount:
                pack.refunded = True
            elif self.stripe.open_chargeback(pack.charge):
                continue  # decided when it closes
            elif self.unlanded_action == "complete" or self.stripe.charged_back(pack.charge):
                self._land(pack)
            else:
                self._refund(pack)

    # -- the rules ------------------------------------------------------------------------------

    def _learn(self, pack: Pack, refunds: Mapping[str, tuple[int, str]]) -> None:
        """What Stripe holds of the pack's refunds now: each that succeeded is money back,
        each that failed is money back no more. A pack kept from landing because all its
        money had gone back lands once that is no longer so (we refunded none of it)."""
        for refund_id, (amount, status) in refunds.items():
            if status == "succeeded":
                pack.returned[refund_id] = amount
            elif status == "failed":
                pack.returned.pop(refund_id, None)
        if pack.refunded and not pack.ours and sum(pack.returned.values()) < pack.amount:
            pack.refunded = False
            self._land(pack)

    def _land(self, pack: Pack) -> None:
        if pack.landed or pack.refunded:
            return
        if sum(pack.returned.values()) >= pack.amount:
            pack.refunded = True
            return
        twin = self._twin(pack)
        if twin is not None and (twin.paid_at, twin.key) < (pack.paid_at, pack.key):
            self._refund(pack)
            return
        pack.landed = True
        if twin is not None:  # paid later, landed first: it is the duplicate
            self._refund(twin)

    def _refund(self, pack: Pack) -> None:
        if self.stripe.charged_back(pack.charge):
            return  # Stripe refuses: the dispute decides where the money goes
        if not pack.refunded:
            pack.refunded = pack.ours = True

    def _twin(self, pack: Pack) -> Pack | None:
        """The earliest paid landed pack (not refunded by us) of the same customer, pack and
        amount, paid within the duplicate window of this one."""
        twins = [
            other
            for other in self.packs.values()
            if other.key != pack.key
            and other.landed
            and not other.ours
            and (other.customer, other.price, other.amount)
            == (pack.customer, pack.price, pack.amount)
            and abs(other.paid_at - pack.paid_at) <= DUPLICATE_WINDOW_S
        ]
        return min(twins, key=lambda p: (p.paid_at, p.key), default=None)

    def _pack_of(self, obj: Mapping[str, Any]) -> Pack | None:
        intent = obj["id"] if obj["object"] == "payment_intent" else obj.get("payment_intent")
        return self.packs.get(intent) if isinstance(intent, str) else None

    def _by_session(self, session_id: str) -> Pack:
        return next(p for p in self.packs.values() if p.session == session_id)
