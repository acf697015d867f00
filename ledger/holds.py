"""Holds: the ``hold`` charge mode, two-phase as TigerBeetle's pending / post / void
transfers (https://docs.tigerbeetle.com/coding/two-phase-transfers/).

A generation charged under ``charge_mode = "hold"`` reserves its credits when it starts
(:func:`place`): the account's ``held`` grows, its balance does not move, and its
spendable credits (balance less held) shrink; the lots the credits come from hold them the
same way (``hold_lots``). Its first terminal outcome settles the hold once, by a
compare-and-set on ``holds.state`` keyed by the generation (``pending`` → ``posted`` or
``voided``): a kept outcome captures it (:func:`capture`: the charge entry is written then,
taking the held credits from the same lots), a refunded outcome, or the hard deadline
(the stuck sweep's refund), voids it (:func:`void`): nothing was charged, and no entry is
written. The account and lot changes go through a :class:`~ledger.lots.Deferred`.
"""

from __future__ import annotations

from ledger import keys
from ledger.backends import Tx
from ledger.clock import now_ms
from ledger.entries import insert_entry
from ledger.errors import InsufficientCredits
from ledger.generations import Generation
from ledger.lots import Deferred, reserve

__all__ = ["CHARGE_MODES", "capture", "is_pending", "place", "settle", "void"]

CHARGE_MODES = ("debit", "hold")
"""How a generation's charge takes its credits: ``debit`` at once, or ``hold`` them until
its outcome captures or voids the hold."""


def place(tx: Tx, *, generation_id: str, account_id: str, credits: int) -> int:
    """Hold ``credits`` for the generation (charged in this transaction); returns the
    credits left to spend. Raises ``InsufficientCredits`` rather than hold more than the
    account can spend."""
    row = tx.one("hold_account_if_covered", account_id=account_id, amount=credits, now_ms=now_ms())
    if row is None:
        funds = tx.one("account_funds", account_id=account_id)
        spendable = 0 if funds is None else int(funds["balance"]) - int(funds["held"])
        raise InsufficientCredits(account_id=account_id, credits=credits, balance=spendable)
    tx.all(
        "insert_hold",
        generation_id=generation_id,
        account_id=account_id,
        credits=credits,
        now_ms=now_ms(),
    )
    reserve(tx, account_id=account_id, credits=credits, generation_id=generation_id)
    return int(row["available"])


def is_pending(tx: Tx, generation_id: str) -> bool:
    """Whether the generation was charged as a hold not settled yet."""
    row = tx.one("hold_of", generation_id=generation_id)
    return row is not None and row["state"] == "pending"


def capture(tx: Tx, *, generation_id: str, entry_key: str, later: Deferred) -> bool:
    """Post the pending hold: its held credits leave the account and their lots, moved out
    by the charge entry ``entry_key`` (which the caller writes). False when the hold was
    not pending (settled already): nothing changes."""
    settled = tx.one("settle_hold", generation_id=generation_id, state="posted", now_ms=now_ms())
    if settled is None:
        return False
    credits = int(settled["credits"])
    later.account(str(settled["account_id"]), balance=-credits, held=-credits)
    for row in tx.all("hold_lots_of", generation_id=generation_id):
        part = int(row["credits"])
        tx.all("insert_lot_move", entry_key=entry_key, lot_id=row["lot_id"], amount=-part)
        later.lot(str(row["lot_id"]), remaining=-part, held=-part)
    return True


def void(tx: Tx, *, generation_id: str, later: Deferred) -> bool:
    """Void the pending hold: its credits are spendable again, on the same lots, and no
    entry is written (the generation was never charged). False when not pending."""
    settled = tx.one("settle_hold", generation_id=generation_id, state="voided", now_ms=now_ms())
    if settled is None:
        return False
    later.account(str(settled["account_id"]), held=-int(settled["credits"]))
    for row in tx.all("hold_lots_of", generation_id=generation_id):
        later.lot(str(row["lot_id"]), held=-int(row["credits"]))
    return True


def settle(tx: Tx, gen: Generation, *, refund: bool, later: Deferred, policy_version: str) -> None:
    """Settle the generation's pending hold by its first terminal outcome: void it
    (``refund``: never charged), or capture it and write its charge entry, decided under
    ``policy_version``."""
    if refund:
        void(tx, generation_id=gen.generation_id, later=later)
        return
    key = keys.charge(gen.generation_id)
    if capture(tx, generation_id=gen.generation_id, entry_key=key, later=later):
        insert_entry(
            tx,
            key=key,
            account_id=gen.account_id,
            kind="charge",
            amount=-gen.credits,
            generation_id=gen.generation_id,
            reason=f"{gen.provider} {gen.operation} (hold captured)",
            policy_version=policy_version,
        )
