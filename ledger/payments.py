"""Paid credit packs: each lands on the balance exactly once, or its money goes back.

A purchase is keyed by the payment provider's own id of the payment (the PaymentIntent for
Stripe), never by the event that told us about it: a session event and a payment event of
the same purchase, in any order and any number of times, grant once. The grant entry's key
is ``pack:<purchase_key>`` and a unique index holds it. Refunds of our own decision go
through ``refunding`` → ``refunded`` around the provider's API call, whose idempotency key
(``refund_key``) is derived from the purchase alone, so a rerun can never refund twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ledger.backends import Database, Row, Tx, required
from ledger.clock import now_ms
from ledger.errors import LedgerError

__all__ = ["GrantResult", "Payment", "Payments", "refund_key"]

log = logging.getLogger(__name__)


class GrantResult(StrEnum):
    GRANTED = "granted"
    ALREADY_GRANTED = "already_granted"
    NOT_PAID = "not_paid"
    INCOMPLETE = "incomplete"
    """Paid, but the account or the pack is not known yet (another event will tell)."""
    DUPLICATE = "duplicate"
    """The same pack was just granted to the same customer for the same amount."""
    REFUND_WON = "refund_won"
    """The purchase is being (or was) refunded: its credits never land."""


@dataclass(frozen=True, slots=True)
class Payment:
    purchase_key: str
    provider: str
    state: str
    account_id: str | None
    price_id: str | None
    credits: int | None
    amount: int | None
    currency: str | None
    customer: str | None
    charge_id: str | None
    session_id: str | None
    paid_at_ms: int | None
    refunded_amount: int
    clawed_credits: int
    refund_reason: str | None
    flag: str | None

    @classmethod
    def from_row(cls, r: Row) -> Payment:
        def opt(v: Any) -> int | None:
            return None if v is None else int(v)

        return cls(
            purchase_key=r["purchase_key"],
            provider=r["provider"],
            state=r["state"],
            account_id=r["account_id"],
            price_id=r["price_id"],
            credits=opt(r["credits"]),
            amount=opt(r["amount"]),
            currency=r["currency"],
            customer=r["customer"],
            charge_id=r["charge_id"],
            session_id=r["session_id"],
            paid_at_ms=opt(r["paid_at_ms"]),
            refunded_amount=int(r["refunded_amount"]),
            clawed_credits=int(r["clawed_credits"]),
            refund_reason=r["refund_reason"],
            flag=r["flag"],
        )


def refund_key(purchase_key: str) -> str:
    """The payment provider's idempotency key for our refund of this purchase."""
    return f"refundry-refund-{purchase_key}"


class Payments:
    def __init__(self, db: Database, *, policy_version: str) -> None:
        self.db = db
        self.policy_version = policy_version

    def observe(
        self,
        *,
        purchase_key: str,
        provider: str,
        state: str,
        account_id: str | None = None,
        price_id: str | None = None,
        credits: int | None = None,
        amount: int | None = None,
        currency: str | None = None,
        customer: str | None = None,
        charge_id: str | None = None,
        session_id: str | None = None,
        paid_at_ms: int | None = None,
    ) -> Payment:
        """Merge what one event says about a purchase (``state``: unpaid, paid or failed).

        Known fields are never overwritten, and the state only moves forward.
        """
        with self.db.write() as tx:
            tx.all(
                "upsert_payment",
                purchase_key=purchase_key,
                provider=provider,
                state=state,
                account_id=account_id,
                price_id=price_id,
                credits=credits,
                amount=amount,
                currency=currency,
                customer=customer,
                charge_id=charge_id,
                session_id=session_id,
                paid_at_ms=paid_at_ms,
                now_ms=now_ms(),
            )
            return Payment.from_row(required(tx.one("payment_by_key", purchase_key=purchase_key)))

    def get(self, purchase_key: str) -> Payment | None:
        with self.db.read() as tx:
            row = tx.one("payment_by_key", purchase_key=purchase_key)
        return Payment.from_row(row) if row else None

    def by_charge(self, charge_id: str) -> Payment | None:
        with self.db.read() as tx:
            row = tx.one("payment_by_charge", charge_id=charge_id)
        return Payment.from_row(row) if row else None

    def grant(
        self, purchase_key: str, *, reason: str, duplicate_window_ms: int | None = None
    ) -> GrantResult:
        """Land the pack's credits, once, unless the purchase is being refunded, or (with
        ``duplicate_window_ms``) the same customer already got the same pack for the same
        amount paid within that window: then it is a ``DUPLICATE`` charge, to refund.

        The duplicate check and the grant share one transaction, serialized per customer
        (an advisory lock on PostgreSQL; SQLite has a single writer), so two identical
        purchases processed at the same instant cannot both land.
        """
        with self.db.write() as tx:
            p = self._lock(tx, purchase_key)
            if p.state == "granted":
                return GrantResult.ALREADY_GRANTED
            if p.state in ("refunding", "refunded"):
                return GrantResult.REFUND_WON
            if p.state != "paid":
                return GrantResult.NOT_PAID
            if p.account_id is None or p.credits is None:
                return GrantResult.INCOMPLETE
            if p.amount and p.refunded_amount >= p.amount:
                # The money went back (a refund seen before the pack could land): no credits.
                self._state(tx, purchase_key, "refunded")
                self._decide(
                    tx,
                    purchase_key,
                    "refunded_at_provider",
                    "fully refunded before the pack landed: not granted",
                )
                return GrantResult.REFUND_WON
            if duplicate_window_ms is not None and (twin := self._twin(tx, p, duplicate_window_ms)):
                self._decide(tx, purchase_key, "duplicate", f"same pack as {twin}")
                return GrantResult.DUPLICATE
            tx.all("ensure_account", account_id=p.account_id, now_ms=now_ms())
            inserted = tx.one(
                "insert_pack_entry",
                idempotency_key=f"pack:{purchase_key}",
                account_id=p.account_id,
                kind="grant",
                amount=p.credits,
                reason=reason,
                policy_version=self.policy_version,
                now_ms=now_ms(),
                purchase_key=purchase_key,
            )
            if inserted is None:
                raise LedgerError(
                    "pack grant entry exists but the payment is not granted",
                    purchase_key=purchase_key,
                )
            tx.all(
                "upsert_account_credit", account_id=p.account_id, amount=p.credits, now_ms=now_ms()
            )
            self._state(tx, purchase_key, "granted")
            self._decide(tx, purchase_key, "grant", reason)
            if p.refunded_amount:  # partly refunded before it landed: its share goes back now
                self._clawback(
                    tx,
                    p,
                    refunded_total=p.refunded_amount,
                    reason="refunded at the provider before the pack landed",
                )
            return GrantResult.GRANTED

    def begin_refund(self, purchase_key: str, *, reason: str) -> str | None:
        """Decide to give the money back: returns the provider idempotency key, or None when
        the purchase is already refunded. A granted pack is clawed back when confirmed."""
        with self.db.write() as tx:
            p = self._lock(tx, purchase_key)
            if p.state == "refunded":
                return None
            if p.state != "refunding":
                tx.all(
                    "update_payment_state",
                    purchase_key=purchase_key,
                    state="refunding",
                    refund_reason=reason,
                    refund_id=None,
                    now_ms=now_ms(),
                )
                self._decide(tx, purchase_key, "refund", reason)
            return refund_key(purchase_key)

    def confirm_refund(self, purchase_key: str, *, refund_id: str) -> None:
        """The provider refunded all that was left of the payment: the purchase is refunded,
        and every credit it had landed is clawed back in the same transaction."""
        with self.db.write() as tx:
            p = self._lock(tx, purchase_key)
            if p.state == "refunded":
                return
            tx.all(
                "update_payment_state",
                purchase_key=purchase_key,
                state="refunded",
                refund_reason=None,
                refund_id=refund_id,
                now_ms=now_ms(),
            )
            self._clawback(
                tx, p, refunded_total=p.amount or p.refunded_amount, reason=f"refund {refund_id}"
            )

    def record_refund(
        self,
        purchase_key: str,
        *,
        refunded_total: int,
        reason: str,
        provider: str = "stripe",
        amount: int | None = None,
        charge_id: str | None = None,
    ) -> int:
        """Money went back at the provider (``refunded_total`` so far: a refund made in its
        dashboard, a lost dispute). Remembered even before the purchase is known, so a pack
        whose events arrive later never lands for money already returned; a landed pack
        gives back its share now. Returns the credits clawed back now."""
        with self.db.write() as tx:
            tx.all(
                "upsert_payment",
                purchase_key=purchase_key,
                provider=provider,
                state="unpaid",
                account_id=None,
                price_id=None,
                credits=None,
                amount=amount,
                currency=None,
                customer=None,
                charge_id=charge_id,
                session_id=None,
                paid_at_ms=None,
                now_ms=now_ms(),
            )
            tx.all(
                "raise_refunded_amount",
                purchase_key=purchase_key,
                refunded_amount=refunded_total,
                now_ms=now_ms(),
            )
            return self._clawback(
                tx, self._lock(tx, purchase_key), refunded_total=refunded_total, reason=reason
            )

    def mark_refunded_at_provider(self, purchase_key: str, *, reason: str) -> None:
        """A purchase whose money was given back in full outside Refundry: refunded, and
        any credits it landed are clawed back."""
        with self.db.write() as tx:
            p = self._lock(tx, purchase_key)
            if p.state == "refunded":
                return
            self._state(tx, purchase_key, "refunded")
            self._decide(tx, purchase_key, "refunded_at_provider", reason)
            self._clawback(tx, p, refunded_total=p.amount or p.refunded_amount, reason=reason)

    def note(self, purchase_key: str, decision: str, reason: str) -> None:
        """Record a decision that moves nothing (an alert, a duplicate noticed, a dry run)."""
        with self.db.write() as tx:
            self._decide(tx, purchase_key, decision, reason)

    def decisions(self, purchase_key: str) -> list[Row]:
        with self.db.read() as tx:
            return tx.all("payment_decisions_for", purchase_key=purchase_key)

    def unlanded(self, *, paid_before_ms: int, limit: int = 500) -> list[Payment]:
        with self.db.read() as tx:
            rows = tx.all("unlanded_payments", paid_before_ms=paid_before_ms, limit=limit)
        return [Payment.from_row(r) for r in rows]

    # -- helpers ----------------------------------------------------------------------------

    def _twin(self, tx: Tx, p: Payment, window_ms: int) -> str | None:
        """A granted purchase of the same customer, pack and amount paid within
        ``window_ms`` of this one, before or after (events arrive in any order)."""
        if p.customer is None or p.price_id is None or p.amount is None or p.paid_at_ms is None:
            return None
        tx.all("lock_customer", customer=p.customer)
        row = tx.one(
            "same_purchase_nearby",
            purchase_key=p.purchase_key,
            customer=p.customer,
            price_id=p.price_id,
            amount=p.amount,
            paid_at_ms=p.paid_at_ms,
            window_ms=window_ms,
        )
        return str(row["purchase_key"]) if row else None

    def _clawback(self, tx: Tx, p: Payment, *, refunded_total: int, reason: str) -> int:
        if p.credits is None or p.account_id is None or not p.amount:
            return 0
        granted = tx.one("entry_by_key", idempotency_key=f"pack:{p.purchase_key}") is not None
        if not granted:
            return 0
        share = min(refunded_total, p.amount)
        target = p.credits * share // p.amount if share < p.amount else p.credits
        take = target - p.clawed_credits
        if take <= 0:
            return 0
        tx.all(
            "insert_pack_entry",
            idempotency_key=f"clawback:{p.purchase_key}:{target}",
            account_id=p.account_id,
            kind="clawback",
            amount=-take,
            reason=reason,
            policy_version=self.policy_version,
            now_ms=now_ms(),
            purchase_key=p.purchase_key,
        )
        balance = int(
            required(
                tx.one(
                    "upsert_account_credit", account_id=p.account_id, amount=-take, now_ms=now_ms()
                )
            )["balance"]
        )
        flag = "negative_balance" if balance < 0 else None
        tx.all(
            "add_payment_clawback",
            purchase_key=p.purchase_key,
            credits=take,
            refunded_amount=refunded_total,
            flag=flag,
            now_ms=now_ms(),
        )
        self._decide(tx, p.purchase_key, "clawback", f"{take} credits: {reason}")
        if flag:
            log.error(
                "claw-back of %s left account %s at %d credits (flagged)",
                p.purchase_key,
                p.account_id,
                balance,
            )
        return take

    def _lock(self, tx: Tx, purchase_key: str) -> Payment:
        row = tx.one("lock_payment", purchase_key=purchase_key)
        if row is None:
            raise LedgerError("no such purchase", purchase_key=purchase_key)
        return Payment.from_row(row)

    def _state(self, tx: Tx, purchase_key: str, state: str) -> None:
        tx.all(
            "update_payment_state",
            purchase_key=purchase_key,
            state=state,
            refund_reason=None,
            refund_id=None,
            now_ms=now_ms(),
        )

    def _decide(self, tx: Tx, purchase_key: str, decision: str, reason: str) -> None:
        tx.all(
            "insert_payment_decision",
            purchase_key=purchase_key,
            decision=decision,
            reason=reason,
            now_ms=now_ms(),
        )
