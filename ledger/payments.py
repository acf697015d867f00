"""Paid credit packs: each lands on the balance exactly once, or its money goes back.

A purchase is keyed by the payment provider's own id of the payment (the PaymentIntent for
Stripe), never by the event that told us about it: a session event and a payment event of
the same purchase, in any order and any number of times, grant once. The grant entry's key
is ``pack:<purchase_key>`` and a unique index holds it. Refunds of our own decision go
through ``refunding`` → ``refunded`` around the provider's API call, whose idempotency key
(``refund_key``) is derived from the purchase alone, so a rerun can never refund twice.

Money that goes back is recorded once per cause (:class:`Reversal`: a refund id, a lost
dispute's id) and each claw-back entry is keyed ``clawback:<purchase_key>:<cause>``, never
by a running total: a cause told again, by the same event or another, takes nothing more.
A purchase ``refunded`` in full keeps none of its credits, whichever refunds were told yet:
the rest goes back under ``clawback:<purchase_key>:refunded``.
Every state change is decided under the purchase's row lock and, where the caller decided
from a state read earlier, compared with that state first. Each method that applies an
event's effect takes the event's ``inbox_id`` and marks it processed in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ledger import keys
from ledger.backends import Database, Row, Tx, required
from ledger.clock import now_ms
from ledger.errors import IdempotencyConflict, LedgerError
from ledger.inbox import processed_in
from ledger.payment_types import GrantResult, Payment, Reversal, refund_key

__all__ = ["GrantResult", "Payment", "Payments", "Reversal", "refund_key"]

log = logging.getLogger(__name__)


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
        inbox_id: str | None = None,
    ) -> Payment:
        """Merge what one event says about a purchase (``state``: unpaid, paid or failed).

        Known fields are never overwritten, and the state only moves forward. ``inbox_id``:
        the event is applied by this alone (nothing to grant), processed in this transaction.
        """
        with self.db.write() as tx:
            self._upsert(
                tx,
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
            )
            processed_in(tx, inbox_id)
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
        self,
        purchase_key: str,
        *,
        reason: str,
        duplicate_window_ms: int | None = None,
        inbox_id: str | None = None,
    ) -> GrantResult:
        """Land the pack's credits, once, unless the purchase is being refunded, or (with
        ``duplicate_window_ms``) the same customer already got the same pack for the same
        amount paid within that window: then it is a ``DUPLICATE`` charge, to refund.

        The duplicate check and the grant share one transaction, serialized per customer
        (an advisory lock on PostgreSQL; SQLite has a single writer), so two identical
        purchases processed at the same instant cannot both land. ``inbox_id`` is marked
        processed in it, unless a duplicate's refund is still to be made.
        """
        with self.db.write() as tx:
            result = self._grant(tx, purchase_key, reason, duplicate_window_ms)
            if result is not GrantResult.DUPLICATE:
                processed_in(tx, inbox_id)
            return result

    def _grant(
        self, tx: Tx, purchase_key: str, reason: str, duplicate_window_ms: int | None
    ) -> GrantResult:
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
            why = "fully refunded before the pack landed: not granted"
            self._decide(tx, purchase_key, "refunded_at_provider", why)
            return GrantResult.REFUND_WON
        if duplicate_window_ms is not None and (twin := self._twin(tx, p, duplicate_window_ms)):
            self._decide(tx, purchase_key, "duplicate", f"same pack as {twin}")
            return GrantResult.DUPLICATE
        tx.all("ensure_account", account_id=p.account_id, now_ms=now_ms())
        if self._entry(tx, p, "grant", keys.pack(purchase_key), p.credits, reason) is None:
            raise LedgerError(
                "pack grant entry exists but the payment is not granted", purchase_key=purchase_key
            )
        self._state(tx, purchase_key, "granted")
        self._decide(tx, purchase_key, "grant", reason)
        if p.refunded_amount:  # partly reversed before it landed: its share goes back now
            why = "reversed at the provider before the pack landed"
            self._clawback(tx, purchase_key, keys.clawback(purchase_key, "at-grant"), why)
        return GrantResult.GRANTED

    def begin_refund(
        self,
        purchase_key: str,
        *,
        reason: str,
        expected_state: str,
        inbox_id: str | None = None,
    ) -> str | None:
        """Decide to give the money back, if the purchase is still in ``expected_state`` (the
        state the refund was decided from): returns the provider idempotency key, or ``None``
        when it is refunded already or has moved on (a pack that landed since, say); then
        ``inbox_id`` is marked processed. A refund begun already goes on with the same key.
        A granted pack is clawed back when the refund is confirmed."""
        with self.db.write() as tx:
            p = self._lock(tx, purchase_key)
            if p.state == "refunding":
                return refund_key(purchase_key)
            if p.state != expected_state or p.state == "refunded":
                processed_in(tx, inbox_id)
                return None
            self._state(tx, purchase_key, "refunding", reason)
            self._decide(tx, purchase_key, "refund", reason)
            return refund_key(purchase_key)

    def confirm_refund(
        self, purchase_key: str, *, refund: Reversal, inbox_id: str | None = None
    ) -> None:
        """The provider refunded all that was left of the payment (``refund``: its id and
        amount): the purchase is refunded, and every credit it had landed is clawed back, in
        the same transaction."""
        with self.db.write() as tx:
            p = self._lock(tx, purchase_key)
            processed_in(tx, inbox_id)
            if p.state == "refunded":
                return
            self._state(tx, purchase_key, "refunded", refund=refund.cause_id)
            self._reverse(tx, purchase_key, [refund], f"refund {refund.cause_id}")
            self._take_the_rest(tx, purchase_key, f"refund {refund.cause_id}")

    def record_reversals(
        self,
        purchase_key: str,
        reversals: Sequence[Reversal],
        *,
        reason: str,
        provider: str = "stripe",
        amount: int | None = None,
        charge_id: str | None = None,
        inbox_id: str | None = None,
    ) -> int:
        """Money went back at the provider (a refund made in its dashboard, a lost dispute),
        each :class:`Reversal` keyed by its cause: one told again is ignored, the same cause
        with another amount raises ``IdempotencyConflict``. Remembered even before the
        purchase is known, so a pack whose events arrive later never lands for money already
        returned; a landed pack gives back its share of each new cause now. Returns the
        credits clawed back now."""
        with self.db.write() as tx:
            self._upsert(
                tx,
                purchase_key=purchase_key,
                provider=provider,
                state="unpaid",
                amount=amount,
                charge_id=charge_id,
            )
            taken = self._reverse(tx, purchase_key, reversals, reason)
            processed_in(tx, inbox_id)
            return taken

    def mark_refunded_at_provider(
        self,
        purchase_key: str,
        *,
        reason: str,
        expected_state: str,
        inbox_id: str | None = None,
    ) -> bool:
        """A purchase in ``expected_state`` whose money went back in full outside Refundry is
        refunded, every credit it landed taken back; False when its state moved on since the
        decision. ``inbox_id`` is marked processed in the same transaction either way."""
        with self.db.write() as tx:
            p = self._lock(tx, purchase_key)
            processed_in(tx, inbox_id)
            if p.state != expected_state:
                return False
            self._state(tx, purchase_key, "refunded")
            self._decide(tx, purchase_key, "refunded_at_provider", reason)
            self._take_the_rest(tx, purchase_key, reason)
            return True

    def note(
        self, purchase_key: str, decision: str, reason: str, *, inbox_id: str | None = None
    ) -> None:
        """Record a decision that moves nothing (an alert, a duplicate noticed, a dry run)."""
        with self.db.write() as tx:
            self._decide(tx, purchase_key, decision, reason)
            processed_in(tx, inbox_id)

    def decisions(self, purchase_key: str) -> list[Row]:
        with self.db.read() as tx:
            return tx.all("payment_decisions_for", purchase_key=purchase_key)

    def unlanded(self, *, paid_before_ms: int, limit: int = 500) -> list[Payment]:
        with self.db.read() as tx:
            rows = tx.all("unlanded_payments", paid_before_ms=paid_before_ms, limit=limit)
        return [Payment.from_row(r) for r in rows]

    # -- helpers ----------------------------------------------------------------------------

    def _upsert(self, tx: Tx, **fields: object) -> None:
        """``upsert_payment`` with every field not given unknown (``None``)."""
        tx.all("upsert_payment", **(dict.fromkeys(_PAYMENT_FIELDS) | fields), now_ms=now_ms())

    def _reverse(self, tx: Tx, purchase_key: str, reversals: Sequence[Reversal], why: str) -> int:
        """Record each new reversal, then claw back its share under its own key."""
        taken = 0
        for r in reversals:
            fresh = tx.one(
                "insert_payment_reversal",
                cause_id=r.cause_id,
                purchase_key=purchase_key,
                kind=r.kind,
                amount=r.amount,
                now_ms=now_ms(),
            )
            if fresh is None:
                known = required(tx.one("payment_reversal", cause_id=r.cause_id))
                if (known["purchase_key"], int(known["amount"])) != (purchase_key, r.amount):
                    raise IdempotencyConflict(
                        cause_id=r.cause_id, amount=r.amount, recorded=int(known["amount"])
                    )
                continue
            tx.all("total_payment_reversals", purchase_key=purchase_key, now_ms=now_ms())
            key = keys.clawback(purchase_key, r.cause_id)
            taken += self._clawback(tx, purchase_key, key, f"{r.kind} {r.cause_id}: {why}")
        return taken

    def _take_the_rest(self, tx: Tx, purchase_key: str, why: str) -> int:
        """What a refunded purchase still kept (refunds untold, or told before it was)."""
        key, reason = keys.clawback(purchase_key, "refunded"), f"refunded ({why}): none is kept"
        return self._clawback(tx, purchase_key, key, reason)

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

    def _clawback(self, tx: Tx, purchase_key: str, key: str, reason: str) -> int:
        """Take back, under ``key``, the credits of the purchase's share reversed so far that
        are not taken back yet (whole credits, rounded down until all is reversed; all of
        them once the purchase is refunded)."""
        p = self._lock(tx, purchase_key)
        if p.credits is None or p.account_id is None or not p.amount:
            return 0
        if tx.one("entry_by_key", idempotency_key=keys.pack(p.purchase_key)) is None:
            return 0  # not landed: the grant takes the reversals into account
        share = min(p.refunded_amount, p.amount)
        whole = share == p.amount or p.state == "refunded"
        target = p.credits if whole else p.credits * share // p.amount
        take = target - p.clawed_credits
        balance = self._entry(tx, p, "clawback", key, -take, reason) if take > 0 else None
        if balance is None:
            return 0
        flag = "negative_balance" if balance < 0 else None
        tx.all(
            "add_payment_clawback",
            purchase_key=p.purchase_key,
            credits=take,
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

    def _entry(
        self, tx: Tx, p: Payment, kind: str, key: str, amount: int, reason: str
    ) -> int | None:
        """One pack ledger entry under ``key`` and its balance change: the balance after it,
        or ``None`` when the key is taken already (nothing written)."""
        assert p.account_id is not None
        inserted = tx.one(
            "insert_pack_entry",
            idempotency_key=key,
            account_id=p.account_id,
            kind=kind,
            amount=amount,
            reason=reason,
            policy_version=self.policy_version,
            now_ms=now_ms(),
            purchase_key=p.purchase_key,
        )
        if inserted is None:
            return None
        credited = tx.one(
            "upsert_account_credit", account_id=p.account_id, amount=amount, now_ms=now_ms()
        )
        return int(required(credited)["balance"])

    def _lock(self, tx: Tx, purchase_key: str) -> Payment:
        row = tx.one("lock_payment", purchase_key=purchase_key)
        if row is None:
            raise LedgerError("no such purchase", purchase_key=purchase_key)
        return Payment.from_row(row)

    def _state(
        self, tx: Tx, key: str, state: str, reason: str | None = None, refund: str | None = None
    ) -> None:
        """Move the purchase to ``state``, with the reason of our refund or its id."""
        tx.all(
            "update_payment_state",
            purchase_key=key,
            state=state,
            refund_reason=reason,
            refund_id=refund,
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


_PAYMENT_FIELDS: tuple[str, ...] = ("account_id", "price_id", "credits", "amount", "currency")
_PAYMENT_FIELDS += ("customer", "charge_id", "session_id", "paid_at_ms")
