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
Every state change is decided under the purchase's row lock and, where the caller decided
from a state read earlier, compared with that state first. Each method that applies an
event's effect takes the event's ``inbox_id`` and marks it processed in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ledger import keys
from ledger.backends import Database, Row, required
from ledger.clock import now_ms
from ledger.errors import LedgerError
from ledger.inbox import processed_in
from ledger.payment_rows import REOPENED, PaymentRows
from ledger.payment_types import GrantResult, Payment, Reversal, refund_key

__all__ = ["GrantResult", "Payment", "Payments", "Reversal", "refund_key"]


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
        with self._writing() as rows:
            rows.upsert(
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
            processed_in(rows.tx, inbox_id)
            return Payment.from_row(
                required(rows.tx.one("payment_by_key", purchase_key=purchase_key))
            )

    def duplicates_refunding(self, purchase_key: str) -> list[Payment]:
        """The purchases being refunded as duplicates of this one (see ``SUPERSEDES``)."""
        with self.db.read() as tx:
            rows = tx.all("duplicates_refunding", purchase_key=purchase_key)
        return [Payment.from_row(r) for r in rows]

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
        ``duplicate_window_ms``) the same buyer (its customer, else its account) already got
        the same pack for the same amount paid within that window: of the two, the one paid
        later is the ``DUPLICATE`` charge, to refund. When the later one had landed first,
        this one lands and the later one's refund is begun (``SUPERSEDES``): its credits go
        back when that refund is confirmed.

        The duplicate check and the grant share one transaction, serialized per customer
        (an advisory lock on PostgreSQL; SQLite has a single writer), so two identical
        purchases processed at the same instant cannot both land. ``inbox_id`` is marked
        processed in it, unless a duplicate's refund is still to be made.
        """
        with self._writing() as rows:
            result = self._grant(rows, purchase_key, reason, duplicate_window_ms)
            if result not in (GrantResult.DUPLICATE, GrantResult.REFUNDING, GrantResult.SUPERSEDES):
                processed_in(rows.tx, inbox_id)
            return result

    def _grant(
        self, rows: PaymentRows, purchase_key: str, reason: str, duplicate_window_ms: int | None
    ) -> GrantResult:
        p = rows.lock(purchase_key)
        if p.state == "granted":
            if rows.tx.all("duplicates_refunding", purchase_key=purchase_key):
                return GrantResult.SUPERSEDES
            return GrantResult.ALREADY_GRANTED
        if p.state == "refunding":
            return GrantResult.REFUNDING
        if p.state == "refunded":
            return GrantResult.REFUND_WON
        if p.state != "paid":
            return GrantResult.NOT_PAID
        if p.account_id is None or p.credits is None:
            return GrantResult.INCOMPLETE
        if p.amount and p.refunded_amount >= p.amount:
            # The money went back (a refund seen before the pack could land): no credits.
            rows.set_state(purchase_key, "refunded")
            why = "fully refunded before the pack landed: not granted"
            rows.decide(purchase_key, "refunded_at_provider", why)
            return GrantResult.REFUND_WON
        twin = None if duplicate_window_ms is None else rows.twin(p, duplicate_window_ms)
        if twin is not None and _paid_first(twin, p):
            rows.mark_duplicate(purchase_key, of=twin.purchase_key)
            rows.decide(purchase_key, "duplicate", f"same pack as {twin.purchase_key}")
            return GrantResult.DUPLICATE
        rows.tx.all("ensure_account", account_id=p.account_id, now_ms=now_ms())
        if rows.entry(p, "grant", keys.pack(purchase_key), p.credits, reason) is None:
            raise LedgerError(
                "pack grant entry exists but the payment is not granted", purchase_key=purchase_key
            )
        rows.set_state(purchase_key, "granted")
        rows.decide(purchase_key, "grant", reason)
        if p.refunded_amount:  # partly reversed before it landed: its share goes back now
            why = "reversed at the provider before the pack landed"
            rows.clawback(purchase_key, keys.clawback(purchase_key, "at-grant"), why)
        if twin is not None:  # the later of the two landed first: it is the duplicate
            rows.mark_duplicate(twin.purchase_key, of=purchase_key)
            rows.decide(twin.purchase_key, "duplicate", f"same pack as {purchase_key}, paid first")
            rows.start_refund(twin.purchase_key, "duplicate")
            return GrantResult.SUPERSEDES
        return GrantResult.GRANTED

    def begin_refund(
        self,
        purchase_key: str,
        *,
        reason: str,
        expected_state: str,
        inbox_id: str | None = None,
    ) -> Payment | None:
        """Decide to give the money back, if the purchase is still in ``expected_state`` (the
        state the refund was decided from): returns the purchase as this compare-and-set left
        it (``refunding``; the provider call is made with its ``refund_key`` and its
        ``refund_reason``, read together here, so one key always goes out with the reason it
        was begun with), or ``None`` when it is refunded already or has moved on (a pack that
        landed since, say); then ``inbox_id`` is marked processed. A refund begun already goes
        on with its current key and reason. A granted pack is clawed back when the refund is
        confirmed."""
        with self._writing() as rows:
            p = rows.lock(purchase_key)
            if p.state == "refunding":
                return p
            if p.state != expected_state or p.state == "refunded":
                processed_in(rows.tx, inbox_id)
                return None
            rows.start_refund(purchase_key, reason)
            return rows.lock(purchase_key)

    def refund_failed(self, purchase_key: str, *, attempt: int, why: str) -> int:
        """The provider call of our refund's ``attempt`` failed with an answer (a 5xx, which
        the provider may keep under that key): the next call is to use the next attempt's key.
        A compare-and-set on ``attempt``: a failure already recorded, or a refund no longer
        under way, changes nothing. Returns the attempt now current."""
        with self._writing() as rows:
            p = rows.lock(purchase_key)
            if p.state != "refunding" or p.refund_attempt != attempt:
                return p.refund_attempt
            rows.tx.all("next_refund_attempt", purchase_key=purchase_key, now_ms=now_ms())
            rows.decide(purchase_key, "refund_failed", f"attempt {attempt}: {why}")
            return attempt + 1

    def abandon_refund(self, purchase_key: str, *, why: str, inbox_id: str | None = None) -> bool:
        """The provider refused our refund for good (a charge under chargeback): the purchase
        leaves ``refunding`` for the state it was begun from (``granted`` when its pack landed,
        else ``paid``), with the decision and one alert saying ``why``; ``inbox_id`` is
        marked processed. A refund decided after this one goes under the next attempt's key.
        A compare-and-set on ``refunding``: False when it was not."""
        with self._writing() as rows:
            p = rows.lock(purchase_key)
            processed_in(rows.tx, inbox_id)
            if p.state != "refunding":
                return False
            landed = (
                rows.tx.one("entry_by_key", idempotency_key=keys.pack(purchase_key)) is not None
            )
            rows.set_state(purchase_key, "granted" if landed else "paid")
            # Stripe keeps the refused answer under the attempt's key: a refund decided later
            # (the chargeback won, then a duplicate found) is a new request, under a new key.
            rows.tx.all("next_refund_attempt", purchase_key=purchase_key, now_ms=now_ms())
            rows.decide(purchase_key, "refund_refused", why)
            rows.decide_once(purchase_key, "alert", why)
            return True

    def confirm_refund(
        self, purchase_key: str, *, refund: Reversal, inbox_id: str | None = None
    ) -> None:
        """The provider refunded all that was left of the payment (``refund``: its id and
        amount): the purchase is refunded, and every credit it had landed is clawed back, in
        the same transaction."""
        with self._writing() as rows:
            p = rows.lock(purchase_key)
            processed_in(rows.tx, inbox_id)
            if p.state == "refunded":
                return
            rows.tx.all(
                "update_payment_state",
                purchase_key=purchase_key,
                state="refunded",
                refund_reason=None,
                refund_id=refund.cause_id,
                now_ms=now_ms(),
            )
            rows.reverse(purchase_key, [refund], f"refund {refund.cause_id}")
            rows.take_the_rest(purchase_key, f"refund {refund.cause_id}")

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
        returned; a landed pack gives back its share of each cause that succeeded now, and
        gets back the share of one that failed after it had succeeded (keyed by its id).
        Returns the credits clawed back now (negative: given back)."""
        with self._writing() as rows:
            rows.upsert(
                purchase_key=purchase_key,
                provider=provider,
                state="unpaid",
                amount=amount,
                charge_id=charge_id,
            )
            taken = rows.reverse(purchase_key, reversals, reason)
            processed_in(rows.tx, inbox_id)
            return taken

    def reopened(self, purchase_key: str) -> bool:
        """Whether the purchase is ``paid`` again, its pack not landed, because a refund that
        had given all its money back at the provider failed: it is to land now, by whichever
        event or reconciliation finds it (a failure told before the purchase's events lands it
        too), never to be settled by the unlanded-pack policy."""
        with self.db.read() as tx:
            row = tx.one("payment_by_key", purchase_key=purchase_key)
            if row is None or row["state"] != "paid":
                return False
            decided = tx.all("payment_decisions_for", purchase_key=purchase_key)
        return any(d["decision"] == REOPENED for d in decided)

    def with_pending_refunds(self, *, limit: int = 500) -> list[Payment]:
        """The purchases with a refund still ``pending`` at the provider, to read again."""
        with self.db.read() as tx:
            rows = tx.all("payments_with_pending_refunds", limit=limit)
        return [Payment.from_row(r) for r in rows]

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
        with self._writing() as rows:
            p = rows.lock(purchase_key)
            processed_in(rows.tx, inbox_id)
            if p.state != expected_state:
                return False
            rows.set_state(purchase_key, "refunded")
            rows.decide(purchase_key, "refunded_at_provider", reason)
            rows.take_the_rest(purchase_key, reason)
            return True

    def note(
        self,
        purchase_key: str,
        decision: str,
        reason: str,
        *,
        inbox_id: str | None = None,
        once: bool = False,
    ) -> bool:
        """Record a decision that moves nothing (an alert, a duplicate noticed, a dry run);
        with ``once``, only if the purchase has no such decision with that reason yet.
        Returns whether it was recorded now."""
        with self._writing() as rows:
            if once:
                fresh = rows.decide_once(purchase_key, decision, reason)
            else:
                rows.decide(purchase_key, decision, reason)
                fresh = True
            processed_in(rows.tx, inbox_id)
            return fresh

    def decisions(self, purchase_key: str) -> list[Row]:
        with self.db.read() as tx:
            return tx.all("payment_decisions_for", purchase_key=purchase_key)

    def unlanded(self, *, paid_before_ms: int, limit: int = 500) -> list[Payment]:
        with self.db.read() as tx:
            rows = tx.all("unlanded_payments", paid_before_ms=paid_before_ms, limit=limit)
        return [Payment.from_row(r) for r in rows]

    @contextmanager
    def _writing(self) -> Iterator[PaymentRows]:
        """One write transaction, through the purchase rows' helpers."""
        with self.db.write() as tx:
            yield PaymentRows(tx, self.policy_version)


def _paid_first(a: Payment, b: Payment) -> bool:
    """Whether ``a`` was paid before ``b`` (the purchase key breaks a tie)."""
    return (a.paid_at_ms or 0, a.purchase_key) < (b.paid_at_ms or 0, b.purchase_key)
