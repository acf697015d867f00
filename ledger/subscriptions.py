"""Subscriptions: a charge made after its subscription's confirmed cancellation goes back, once.

Two facts are remembered, each the moment its event arrives, since Stripe does not order
events: the cancellation (``subscription_cancellations``, the earliest time seen wins) and
every invoice paid (``subscription_charges``, keyed by the invoice). A charge starts
``kept``; refunding one goes ``refunding`` → ``refunded`` around the provider's API call,
whose idempotency key is derived from the PaymentIntent alone (:func:`refund_key`), so a
rerun between the call and the ledger write gets the same refund back, not a second one.
Every decision about a charge lands in ``payment_decisions`` under its invoice id, once.
Recording a cancellation and recording a charge of the same subscription are serialized (an
advisory lock on PostgreSQL; SQLite has a single writer): each sees the other once both are
told, so a charge and a cancellation applied at the same instant cannot both miss the refund.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.backends import Database, Row, Tx, required
from ledger.clock import now_ms
from ledger.errors import LedgerError
from ledger.expiry import start_cancellation_clock
from ledger.inbox import processed_in
from ledger.payment_rows import decide_once as _decide_once
from ledger.payments import refund_key

__all__ = ["Cancellation", "SubscriptionCharge", "Subscriptions"]


@dataclass(frozen=True, slots=True)
class Cancellation:
    subscription_id: str
    customer: str
    cancelled_at_ms: int
    recorded_at_ms: int

    @classmethod
    def from_row(cls, r: Row) -> Cancellation:
        return cls(
            subscription_id=r["subscription_id"],
            customer=r["customer"],
            cancelled_at_ms=int(r["cancelled_at_ms"]),
            recorded_at_ms=int(r["recorded_at_ms"]),
        )


@dataclass(frozen=True, slots=True)
class SubscriptionCharge:
    invoice_id: str
    subscription_id: str
    customer: str
    payment_intent: str | None
    amount: int
    currency: str
    paid_at_ms: int
    state: str
    """``kept``, ``refunding`` (the provider was asked, the answer not recorded) or ``refunded``."""
    refund_id: str | None

    @classmethod
    def from_row(cls, r: Row) -> SubscriptionCharge:
        return cls(
            invoice_id=r["invoice_id"],
            subscription_id=r["subscription_id"],
            customer=r["customer"],
            payment_intent=r["payment_intent"],
            amount=int(r["amount"]),
            currency=r["currency"],
            paid_at_ms=int(r["paid_at_ms"]),
            state=r["state"],
            refund_id=r["refund_id"],
        )

    def paid_after(self, cancellation: Cancellation) -> bool:
        """Paid strictly after the subscription stopped: a charge it should not have made."""
        return self.paid_at_ms > cancellation.cancelled_at_ms


class Subscriptions:
    """``ledger.subscriptions``: every operation is idempotent."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record_cancellation(
        self,
        *,
        subscription_id: str,
        customer: str,
        cancelled_at_ms: int,
        inbox_id: str | None = None,
    ) -> tuple[Cancellation, list[SubscriptionCharge]]:
        """Remember a confirmed cancellation (told again with another time, the earliest
        wins), and return it with the subscription's recorded charges, oldest first. With no
        charge to settle, ``inbox_id`` is marked processed in the same transaction.

        Serialized per subscription with :meth:`record_charge` (an advisory lock on
        PostgreSQL; SQLite has one writer), so a cancellation and an invoice recorded at the
        same moment always see each other, whichever commits first."""
        with self.db.write() as tx:
            tx.all("lock_subscription", subscription_id=subscription_id)
            row = tx.one(
                "upsert_subscription_cancellation",
                subscription_id=subscription_id,
                customer=customer,
                cancelled_at_ms=cancelled_at_ms,
                now_ms=now_ms(),
            )
            start_cancellation_clock(tx, subscription_id, int(required(row)["cancelled_at_ms"]))
            rows = tx.all("subscription_charges_of", subscription_id=subscription_id)
            if not rows:
                processed_in(tx, inbox_id)
        return Cancellation.from_row(required(row)), [SubscriptionCharge.from_row(r) for r in rows]

    def cancellation(self, subscription_id: str) -> Cancellation | None:
        with self.db.read() as tx:
            row = tx.one("subscription_cancellation", subscription_id=subscription_id)
        return Cancellation.from_row(row) if row else None

    def record_charge(
        self,
        *,
        invoice_id: str,
        subscription_id: str,
        customer: str,
        payment_intent: str | None,
        amount: int,
        currency: str,
        paid_at_ms: int,
        inbox_id: str | None = None,
    ) -> tuple[SubscriptionCharge, Cancellation | None]:
        """Remember a paid invoice of a subscription (a known one only learns its
        PaymentIntent, if it had none yet), and return it with its subscription's cancellation
        if one is known. With none, ``inbox_id`` is marked processed in the same transaction.
        Serialized per subscription with :meth:`record_cancellation`."""
        with self.db.write() as tx:
            tx.all("lock_subscription", subscription_id=subscription_id)
            row = tx.one(
                "upsert_subscription_charge",
                invoice_id=invoice_id,
                subscription_id=subscription_id,
                customer=customer,
                payment_intent=payment_intent,
                amount=amount,
                currency=currency,
                paid_at_ms=paid_at_ms,
                now_ms=now_ms(),
            )
            cancelled = tx.one("subscription_cancellation", subscription_id=subscription_id)
            if cancelled is None:
                processed_in(tx, inbox_id)
        known = Cancellation.from_row(cancelled) if cancelled else None
        return SubscriptionCharge.from_row(required(row)), known

    def charge(self, invoice_id: str) -> SubscriptionCharge | None:
        with self.db.read() as tx:
            row = tx.one("subscription_charge", invoice_id=invoice_id)
        return SubscriptionCharge.from_row(row) if row else None

    def charges(self, subscription_id: str) -> list[SubscriptionCharge]:
        """Every recorded charge of a subscription, oldest payment first."""
        with self.db.read() as tx:
            rows = tx.all("subscription_charges_of", subscription_id=subscription_id)
        return [SubscriptionCharge.from_row(r) for r in rows]

    def keep(self, invoice_id: str, *, reason: str, inbox_id: str | None = None) -> bool:
        """Decide that a charge stays; False (nothing recorded) when it is already being, or
        was, refunded. ``inbox_id`` is marked processed in the same transaction."""
        with self.db.write() as tx:
            processed_in(tx, inbox_id)
            if self._lock(tx, invoice_id).state != "kept":
                return False
            _decide_once(tx, invoice_id, "keep", reason)
            return True

    def begin_refund(
        self, invoice_id: str, *, payment_intent: str, reason: str, inbox_id: str | None = None
    ) -> str | None:
        """Decide to give a charge's money back: returns the provider idempotency key, or
        None when it is already refunded (then ``inbox_id`` is marked processed). The
        PaymentIntent is remembered with the decision."""
        with self.db.write() as tx:
            c = self._lock(tx, invoice_id)
            if c.state == "refunded":
                processed_in(tx, inbox_id)
                return None
            if c.payment_intent not in (None, payment_intent):
                raise LedgerError(
                    "charge refunded through another payment intent",
                    invoice_id=invoice_id,
                    payment_intent=payment_intent,
                )
            if c.state == "kept":
                self._update(tx, invoice_id, "refunding", payment_intent=payment_intent)
                _decide_once(tx, invoice_id, "refund", reason)
            return refund_key(payment_intent)

    def confirm_refund(
        self, invoice_id: str, *, refund_id: str, inbox_id: str | None = None
    ) -> None:
        """The provider refunded the charge: it is refunded (once); ``inbox_id`` is marked
        processed in the same transaction."""
        with self.db.write() as tx:
            processed_in(tx, inbox_id)
            c = self._lock(tx, invoice_id)
            if c.state == "refunded":
                return
            if c.state != "refunding":
                raise LedgerError("refund confirmed but never begun", invoice_id=invoice_id)
            self._update(tx, invoice_id, "refunded", refund_id=refund_id)

    def note(
        self, invoice_id: str, decision: str, reason: str, *, inbox_id: str | None = None
    ) -> None:
        """Record a decision that moves nothing (an alert), once."""
        with self.db.write() as tx:
            _decide_once(tx, invoice_id, decision, reason)
            processed_in(tx, inbox_id)

    def decisions(self, invoice_id: str) -> list[Row]:
        with self.db.read() as tx:
            return tx.all("payment_decisions_for", purchase_key=invoice_id)

    # -- helpers ----------------------------------------------------------------------------

    def _lock(self, tx: Tx, invoice_id: str) -> SubscriptionCharge:
        row = tx.one("lock_subscription_charge", invoice_id=invoice_id)
        if row is None:
            raise LedgerError("no such subscription charge", invoice_id=invoice_id)
        return SubscriptionCharge.from_row(row)

    def _update(
        self,
        tx: Tx,
        invoice_id: str,
        state: str,
        *,
        payment_intent: str | None = None,
        refund_id: str | None = None,
    ) -> None:
        tx.all(
            "update_subscription_charge",
            invoice_id=invoice_id,
            state=state,
            payment_intent=payment_intent,
            refund_id=refund_id,
            now_ms=now_ms(),
        )
