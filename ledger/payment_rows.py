"""One transaction's reads and writes of the payments tables: a purchase's row (locked,
merged, its state and decisions), its reversals and the claw-backs and grants they cause as
ledger entries with their balance change. ``ledger.payments`` decides; these apply."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ledger import keys, lots
from ledger.backends import Tx, required
from ledger.clock import now_ms
from ledger.decision_rules import decision_rule
from ledger.entries import insert_entry
from ledger.errors import IdempotencyConflict, LedgerError
from ledger.payment_types import Payment, Reversal
from ledger.redaction import redact_text

__all__ = ["REOPENED", "PaymentRows", "decide_once"]

log = logging.getLogger("ledger.payments")

REOPENED = "reopened"
"""The decision that a purchase refunded at the provider is ``paid`` again (a refund failed)."""


class PaymentRows:
    """The helpers of one transaction ``tx``; entries carry ``policy_version``."""

    def __init__(self, tx: Tx, policy_version: str) -> None:
        self.tx = tx
        self.policy_version = policy_version

    def decide_once(self, purchase_key: str, decision: str, reason: str) -> bool:
        """:func:`decide_once` in this transaction."""
        return decide_once(self.tx, purchase_key, decision, reason, self.policy_version)

    def upsert(self, **fields: object) -> None:
        """``upsert_payment`` with every field not given unknown (``None``)."""
        self.tx.all("upsert_payment", **(dict.fromkeys(_PAYMENT_FIELDS) | fields), now_ms=now_ms())

    def reverse(self, purchase_key: str, reversals: Sequence[Reversal], why: str) -> int:
        """Record each reversal, or its move to a later state, then settle the claw-backs:
        a reversal that succeeded takes its share back under its own key; one that failed
        after it had succeeded gives its share back under its own key. A purchase refunded
        by our own decision keeps nothing whatever fails later (see :meth:`_failed_after_ours`);
        one refunded at the provider before its pack landed is reopened when a failure leaves
        its money no longer all back (see :meth:`_reopen`). Returns the credits taken back now
        (negative when given back)."""
        moved = 0
        for r in reversals:
            was: str | None = None
            fresh = self.tx.one(
                "insert_payment_reversal",
                cause_id=r.cause_id,
                purchase_key=purchase_key,
                kind=r.kind,
                amount=r.amount,
                state=r.state,
                now_ms=now_ms(),
            )
            if fresh is None:
                known = required(self.tx.one("payment_reversal", cause_id=r.cause_id))
                if (known["purchase_key"], int(known["amount"])) != (purchase_key, r.amount):
                    raise IdempotencyConflict(
                        cause_id=r.cause_id, amount=r.amount, recorded=int(known["amount"])
                    )
                was = str(known["state"])
                if _ORDER[r.state] <= _ORDER[was]:
                    continue  # told again, or an older state: nothing moves
                self.tx.all("update_payment_reversal_state", cause_id=r.cause_id, state=r.state)
            self.tx.all("total_payment_reversals", purchase_key=purchase_key, now_ms=now_ms())
            reason = f"{r.kind} {r.cause_id} {r.state}: {why}"
            if r.state == "succeeded":
                moved += self.clawback(
                    purchase_key, keys.clawback(purchase_key, r.cause_id), reason
                )
            elif r.state == "failed" and not self._failed_after_ours(purchase_key, r, was):
                moved -= self.restore(purchase_key, keys.restore(purchase_key, r.cause_id), reason)
                self._reopen(purchase_key, reason)
        return moved

    def _failed_after_ours(self, purchase_key: str, r: Reversal, was: str | None) -> bool:
        """Whether the purchase was refunded by our own decision (a duplicate, a fraud
        warning, an unlanded pack): then it keeps no credit, whichever refund of its charge
        fails later (another's, told before or after ours, or ours), so what it keeps never
        depends on the order its refunds were told in. Stripe returns a failed refund's money
        to the merchant's balance and the customer must be paid another way
        (https://docs.stripe.com/refunds#failed-refunds): one alert per refund known to have
        succeeded (``was``) that failed."""
        p = self.lock(purchase_key)
        if p.state != "refunded" or not self._refunded_by_us(purchase_key):
            return False
        if was != "succeeded":
            return True  # never known as money back: nothing to tell apart from its own alert
        why = (
            f"refund {r.cause_id} of {r.amount} failed after the purchase was refunded: the "
            "money is back on the merchant's balance, not with the customer; settle it by hand"
        )
        if self.decide_once(purchase_key, "alert", why):
            log.error("purchase %s: %s", purchase_key, why)
        return True

    def _refunded_by_us(self, purchase_key: str) -> bool:
        """Whether the purchase's last refund decision of ours still stands: begun
        (``refund``) and not given up since (``refund_refused``: a chargeback refused it, and
        what refunded the purchase afterwards was the provider's, not ours)."""
        decided = self.tx.all("payment_decisions_for", purchase_key=purchase_key)
        ours = [d["decision"] for d in decided if d["decision"] in ("refund", "refund_refused")]
        return bool(ours) and ours[-1] == "refund"

    def _reopen(self, purchase_key: str, reason: str) -> None:
        """A purchase ``refunded`` at the provider before its pack landed (all its money had
        gone back) whose money is no longer all back (a refund failed) is ``paid`` again, as
        if the failed refund had never been told: the caller lands it (see
        ``Payments.reopened``). Whether it was told before or after the failure, it lands."""
        p = self.lock(purchase_key)
        if p.state != "refunded" or not p.amount or p.refunded_amount >= p.amount:
            return
        landed = self.tx.one("entry_by_key", idempotency_key=keys.pack(purchase_key)) is not None
        self.set_state(purchase_key, "granted" if landed else "paid")
        self.decide(purchase_key, REOPENED, f"no longer refunded: {reason}")

    def twin(self, p: Payment, window_ms: int) -> Payment | None:
        """A granted purchase by the same buyer (:attr:`Payment.buyer`) of the same pack for
        the same amount, paid within ``window_ms`` of this one, before or after (events
        arrive in any order): the earliest. Serialized per buyer."""
        buyer = p.buyer
        if buyer is None or p.price_id is None or not p.amount or p.paid_at_ms is None:
            return None  # nothing to tell it by, or no money to give back
        self.tx.all("lock_customer", customer=buyer)
        row = self.tx.one(
            "same_purchase_nearby",
            purchase_key=p.purchase_key,
            buyer=buyer,
            price_id=p.price_id,
            amount=p.amount,
            paid_at_ms=p.paid_at_ms,
            window_ms=window_ms,
        )
        return Payment.from_row(row) if row else None

    def mark_duplicate(self, purchase_key: str, *, of: str) -> None:
        self.tx.all(
            "mark_payment_duplicate", purchase_key=purchase_key, duplicate_of=of, now_ms=now_ms()
        )

    def start_refund(self, purchase_key: str, reason: str) -> None:
        """The purchase is ``refunding`` for ``reason``, and the decision says so."""
        self.tx.all(
            "update_payment_state",
            purchase_key=purchase_key,
            state="refunding",
            refund_reason=redact_text(reason),
            refund_id=None,
            now_ms=now_ms(),
        )
        self.decide(purchase_key, "refund", reason)

    def clawback(self, purchase_key: str, key: str, reason: str) -> int:
        """Take back, under ``key``, the credits of the purchase's share reversed so far that
        are not taken back yet (whole credits, rounded down until all is reversed; all of them
        once the purchase is refunded)."""
        return self._to_target(purchase_key, key, reason, "clawback")

    def take_the_rest(self, purchase_key: str, why: str) -> int:
        """What a purchase refunded in full still kept (refunds not told yet, or told before
        it was refunded, rounded down), taken back under ``clawback:<purchase>:refunded``: a
        refunded purchase keeps no credit, whichever order its refunds were told in."""
        key = keys.clawback(purchase_key, "refunded")
        return self.clawback(purchase_key, key, f"refunded ({why}): none is kept")

    def restore(self, purchase_key: str, key: str, reason: str) -> int:
        """Give back, under ``key``, the credits taken back beyond the purchase's share
        reversed now (a refund that failed after its claw-back)."""
        return self._to_target(purchase_key, key, reason, "restore")

    def _to_target(self, purchase_key: str, key: str, reason: str, kind: str) -> int:
        """Move the purchase's clawed credits toward its reversed share, one way only (``kind``
        ``clawback`` takes, ``restore`` gives), as one entry under ``key``; returns the credits
        moved (0 when there is nothing to move that way, or the key is taken)."""
        p = self.lock(purchase_key)
        if p.credits is None or p.account_id is None or not p.amount:
            return 0
        if self.tx.one("entry_by_key", idempotency_key=keys.pack(p.purchase_key)) is None:
            return 0  # not landed: the grant takes the reversals into account
        share = min(p.refunded_amount, p.amount)
        whole = share == p.amount or (p.state == "refunded" and kind == "clawback")
        target = p.credits if whole else p.credits * share // p.amount
        take = target - p.clawed_credits
        if (take if kind == "clawback" else -take) <= 0:
            return 0
        balance = self.entry(p, kind, key, -take, reason)
        if balance is None:
            return 0
        flag = "negative_balance" if balance < 0 and kind == "clawback" else None
        self.tx.all(
            "add_payment_clawback",
            purchase_key=p.purchase_key,
            credits=take,
            flag=flag,
            now_ms=now_ms(),
        )
        self.decide(p.purchase_key, kind, f"{abs(take)} credits: {reason}")
        if flag:
            log.error(
                "claw-back of %s left account %s at %d credits (flagged)",
                p.purchase_key,
                p.account_id,
                balance,
            )
        return abs(take)

    def entry(self, p: Payment, kind: str, key: str, amount: int, reason: str) -> int | None:
        """One pack ledger entry under ``key`` and its balance change: the balance after it,
        or ``None`` when the key is taken already (nothing written). A grant opens the
        pack's lot (``ledger.lots.PACK``, keyed as the grant); a claw-back or restore moves
        credits out of or back into that lot."""
        assert p.account_id is not None
        if not insert_entry(
            self.tx,
            key=key,
            account_id=p.account_id,
            kind=kind,
            amount=amount,
            reason=reason,
            policy_version=self.policy_version,
            purchase_key=p.purchase_key,
        ):
            return None
        credited = self.tx.one(
            "upsert_account_credit", account_id=p.account_id, amount=amount, now_ms=now_ms()
        )
        if kind == "grant":
            lots.open_lot(
                self.tx,
                lot_id=key,
                account_id=p.account_id,
                credits=amount,
                terms=lots.PACK,
                entry_key=key,
            )
        else:
            lot_id = keys.pack(p.purchase_key)
            lots.move_one(
                self.tx, lot_id=lot_id, account_id=p.account_id, amount=amount, entry_key=key
            )
        return int(required(credited)["balance"])

    def lock(self, purchase_key: str) -> Payment:
        row = self.tx.one("lock_payment", purchase_key=purchase_key)
        if row is None:
            raise LedgerError("no such purchase", purchase_key=purchase_key)
        return Payment.from_row(row)

    def set_state(self, purchase_key: str, state: str) -> None:
        self.tx.all(
            "update_payment_state",
            purchase_key=purchase_key,
            state=state,
            refund_reason=None,
            refund_id=None,
            now_ms=now_ms(),
        )

    def decide(self, purchase_key: str, decision: str, reason: str) -> None:
        """Record a decision, with the policy version and rule it was made under."""
        self.tx.all(
            "insert_payment_decision",
            purchase_key=purchase_key,
            decision=decision,
            reason=redact_text(reason),
            now_ms=now_ms(),
            policy_version=self.policy_version,
            rule=decision_rule(decision, reason),
        )


_ORDER = {"pending": 0, "succeeded": 1, "failed": 2}
"""A reversal's states, in the only order it moves through."""

_PAYMENT_FIELDS: tuple[str, ...] = ("account_id", "price_id", "credits", "amount", "currency")
_PAYMENT_FIELDS += ("customer", "charge_id", "session_id", "paid_at_ms")


def decide_once(
    tx: Tx, purchase_key: str, decision: str, reason: str, policy_version: str | None = None
) -> bool:
    """Record a decision about a payment (a purchase or an invoice) unless one with the same
    decision and reason is recorded already; True when it was recorded now. The decision
    records ``policy_version`` (None: decided by no policy version) and its rule
    (``ledger.decision_rules``)."""
    rows = tx.all(
        "insert_payment_decision_once",
        purchase_key=purchase_key,
        decision=decision,
        reason=redact_text(reason),
        now_ms=now_ms(),
        policy_version=policy_version,
        rule=decision_rule(decision, reason),
    )
    return bool(rows)
