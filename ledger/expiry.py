"""Expiry: credits past their lot's expiry are written off by an entry of their own.

The sweep (:func:`expire_due`) finds lots past ``expires_at_ms`` with credits neither spent
nor held, and writes one ``expiry`` entry per lot in its own transaction: the account row is
locked first (the order every writer of lots takes), then the lot is written off by a
compare-and-set on its count of expiries, and the entry's key names the lot, its expiry
time and that count (``expiry:<lot>:<expires_at_ms>:<n>``). A redelivered or concurrent
sweep finds the count moved, or nothing left, and writes nothing. Credits a refund or a
voided hold gives back to a lot already written off are written off by the next sweep,
under the next count. Held credits are left to their hold: captured, they are spent;
voided, the next sweep writes them off.

``start_cancellation_clock`` sets the expiry of a subscription's ``after_cancellation``
lots when its cancellation is recorded (the earliest cancellation wins).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.backends import Database, Tx
from ledger.clock import now_ms
from ledger.entries import insert_entry
from ledger.errors import LedgerError
from ledger.lots import Deferred, apply

__all__ = ["ExpiryResult", "expire_due", "expiry_key", "start_cancellation_clock"]


@dataclass(frozen=True, slots=True)
class ExpiryResult:
    """What one sweep wrote off: lots and whole credits."""

    lots: int
    credits: int


def expiry_key(lot_id: str, expires_at_ms: int, count: int) -> str:
    """The idempotency key of a lot's ``count``-th expiry (0 first) at ``expires_at_ms``."""
    return f"expiry:{lot_id}:{expires_at_ms}:{count}"


def start_cancellation_clock(tx: Tx, subscription_id: str, cancelled_at_ms: int) -> None:
    """The subscription's ``after_cancellation`` lots expire their duration after
    ``cancelled_at_ms`` (ms since the epoch); an earlier expiry already set stays."""
    tx.all(
        "start_cancellation_clock",
        subscription_id=subscription_id,
        cancelled_at_ms=cancelled_at_ms,
    )


def expire_due(
    db: Database, *, policy_version: str, at_ms: int | None = None, limit: int = 500
) -> ExpiryResult:
    """Write off every lot due at ``at_ms`` (default now), ``limit`` lots a run at most,
    each in its own transaction; entries record ``policy_version``. Safe to run from several
    schedulers at once and to run again."""
    at = now_ms() if at_ms is None else at_ms
    with db.read() as tx:
        due = tx.all("due_lots", now_ms=at, limit=limit)
    lots = credits = 0
    for row in due:
        with db.write() as tx:
            written = _expire_lot(
                tx, str(row["lot_id"]), str(row["account_id"]), at, policy_version
            )
        if written:
            lots, credits = lots + 1, credits + written
    return ExpiryResult(lots, credits)


def _expire_lot(tx: Tx, lot_id: str, account_id: str, at_ms: int, policy_version: str) -> int:
    tx.one("lock_account", account_id=account_id)
    lot = tx.one("lot_by_id", lot_id=lot_id)
    if lot is None or lot["expires_at_ms"] is None or int(lot["expires_at_ms"]) > at_ms:
        return 0
    amount = int(lot["remaining"]) - int(lot["held"])
    if amount <= 0:
        return 0
    count = int(lot["expiries"])
    if tx.one("expire_lot", lot_id=lot_id, expiries=count, amount=amount) is None:
        return 0
    key = expiry_key(lot_id, int(lot["expires_at_ms"]), count)
    if not insert_entry(
        tx,
        key=key,
        account_id=account_id,
        kind="expiry",
        amount=-amount,
        reason=f"{lot['credit_kind']} credits expired ({lot['expiry_rule']})",
        policy_version=policy_version,
    ):
        raise LedgerError("an expiry key is taken by another write-off", key=key)
    tx.all("insert_lot_move", entry_key=key, lot_id=lot_id, amount=-amount)
    later = Deferred()
    later.account(account_id, balance=-amount)
    apply(tx, later)
    return amount
