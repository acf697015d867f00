"""Credit kinds: every grant is a lot of one kind, and every entry says which lots it moved.

A lot (``credit_lots``) holds the credits of one grant: its kind (``subscription``,
``pack``, ``promo``, or any name the policy gives), its expiry terms (:class:`LotTerms`),
the credits left (``remaining``) and those a pending hold reserves (``held``). Each entry
that moves credits writes one ``lot_moves`` row per lot it moved, keyed by the entry's
idempotency key, so that:

- a charge takes credits in the documented order (``spendable_lots`` in
  ``ledger/sql/queries.sql``): lots with a known expiry first, soonest first; then lots that
  may expire (``after_cancellation`` while the subscription runs); never-expiring lots
  last; the oldest lot first among equals. A lot past its expiry is not spent from, even
  before the expiry sweep has written it off;
- a refund gives back to the very lots its charge took from (a charge written before lots
  existed gives back to the account's opening lot);
- ``ledger check`` proves each kind's balance from the moves (``ledger.audit``).

Locks are taken in one order: the account row, then its lots. A batch defers both to its
end (:class:`Deferred`, applied by :func:`apply`: accounts in id order, then lots in id
order), as it defers the balance of its refunds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.backends import Tx
from ledger.clock import now_ms
from ledger.errors import InsufficientCredits, InvalidLotTerms, LedgerError

__all__ = [
    "EXPIRY_RULES",
    "PACK",
    "PROMO",
    "Deferred",
    "LotTerms",
    "apply",
    "give_back",
    "move_one",
    "open_lot",
    "opening_lot",
    "reserve",
    "take",
]

EXPIRY_RULES = ("never", "cycle_end", "after_cancellation")
"""``never``; ``cycle_end``: at ``expires_at_ms`` (the billing cycle's end, known at the
grant); ``after_cancellation``: ``after_cancellation_ms`` after the subscription's confirmed
cancellation (``start_cancellation_clock``)."""

_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True, slots=True)
class LotTerms:
    """A grant's kind and expiry terms, fixed when the lot opens (a later policy version
    does not change the terms of credits already granted). Times in ms since the epoch,
    durations in ms. Raises ``InvalidLotTerms`` for terms the rule does not take."""

    credit_kind: str = "promo"
    expiry_rule: str = "never"
    expires_at_ms: int | None = None
    after_cancellation_ms: int | None = None
    subscription_id: str | None = None

    def __post_init__(self) -> None:
        if not _KIND.fullmatch(self.credit_kind):
            raise InvalidLotTerms(
                "a credit kind is 1 to 32 lowercase letters, digits or _", field="credit_kind"
            )
        if self.expiry_rule not in EXPIRY_RULES:
            raise InvalidLotTerms(f"one of {', '.join(EXPIRY_RULES)}", field="expiry_rule")
        timed = self.expiry_rule == "cycle_end"
        if timed != (self.expires_at_ms is not None):
            raise InvalidLotTerms(
                "expires_at_ms is given for the cycle_end rule, and only for it",
                field="expires_at_ms",
            )
        after = self.expiry_rule == "after_cancellation"
        if after != (self.after_cancellation_ms is not None) or (
            after and (self.subscription_id is None or (self.after_cancellation_ms or 0) < 0)
        ):
            raise InvalidLotTerms(
                "after_cancellation takes a duration of 0 ms or more and a subscription_id",
                field="after_cancellation_ms",
            )


PROMO = LotTerms()
"""A grant the caller keys itself, without terms: promo credits that never expire."""
PACK = LotTerms("pack")
"""A paid pack's credits: they never expire."""


class Deferred(dict[str, int]):
    """Changes to apply at the end of a transaction (:func:`apply`): account → balance
    change (the ``credit_later`` of a batch), and ``held`` (account → held change) and
    ``lots`` (lot → [remaining change, held change])."""

    def __init__(self) -> None:
        super().__init__()
        self.held: dict[str, int] = {}
        self.lots: dict[str, list[int]] = {}

    def account(self, account_id: str, *, balance: int = 0, held: int = 0) -> None:
        self[account_id] = self.get(account_id, 0) + balance
        self.held[account_id] = self.held.get(account_id, 0) + held

    def lot(self, lot_id: str, *, remaining: int = 0, held: int = 0) -> None:
        change = self.lots.setdefault(lot_id, [0, 0])
        change[0] += remaining
        change[1] += held


def apply(tx: Tx, changes: dict[str, int]) -> None:
    """Apply ``changes`` in ``tx``: each account (id order), then each lot (id order). A
    plain dict changes balances only."""
    held = changes.held if isinstance(changes, Deferred) else {}
    ts = now_ms()
    for account_id in sorted(set(changes) | set(held)):
        balance, hold = changes.get(account_id, 0), held.get(account_id, 0)
        if balance or hold:
            tx.all("adjust_account", account_id=account_id, balance=balance, held=hold, now_ms=ts)
    if isinstance(changes, Deferred):
        for lot_id in sorted(changes.lots):
            remaining, hold = changes.lots[lot_id]
            if remaining or hold:
                tx.all("adjust_lot", lot_id=lot_id, remaining=remaining, held=hold)


def open_lot(
    tx: Tx, *, lot_id: str, account_id: str, credits: int, terms: LotTerms, entry_key: str
) -> None:
    """Open the lot ``lot_id`` (the grant entry's key) with ``credits``, moved in by the
    grant entry ``entry_key``. Call once, when that entry was written now."""
    tx.all(
        "insert_lot",
        lot_id=lot_id,
        account_id=account_id,
        credit_kind=terms.credit_kind,
        expiry_rule=terms.expiry_rule,
        expires_at_ms=terms.expires_at_ms,
        after_cancellation_ms=terms.after_cancellation_ms,
        subscription_id=terms.subscription_id,
        now_ms=now_ms(),
    )
    _move(tx, entry_key, lot_id, credits)
    tx.all("adjust_lot", lot_id=lot_id, remaining=credits, held=0)


def opening_lot(tx: Tx, account_id: str) -> str:
    """The account's opening lot (a never-expiring ``promo`` lot; the migration opened one
    per account that held a balance), opened empty when missing: where credits of entries
    written before lots existed go back."""
    lot_id = f"opening:{account_id}"
    tx.all(
        "insert_lot",
        lot_id=lot_id,
        account_id=account_id,
        credit_kind=PROMO.credit_kind,
        expiry_rule="never",
        expires_at_ms=None,
        after_cancellation_ms=None,
        subscription_id=None,
        now_ms=now_ms(),
    )
    return lot_id


def _allocate(tx: Tx, account_id: str, credits: int, at_ms: int) -> list[tuple[str, int]]:
    """The lots ``credits`` come from, in the consumption order: ``(lot_id, credits)``."""
    taken: list[tuple[str, int]] = []
    left = credits
    for row in tx.all("spendable_lots", account_id=account_id, now_ms=at_ms):
        if left == 0:
            break
        part = min(left, int(row["free"]))
        taken.append((str(row["lot_id"]), part))
        left -= part
    if left:
        raise InsufficientCredits(account_id=account_id, credits=credits, spendable=credits - left)
    return taken


def take(tx: Tx, *, account_id: str, credits: int, entry_key: str) -> None:
    """Take ``credits`` from the account's lots in the consumption order, moved out by the
    entry ``entry_key`` (the account is debited, and so locked, first). Raises
    ``InsufficientCredits`` when the spendable lots fall short (credits past their expiry
    count in the balance until the sweep writes them off, but are not spent)."""
    for lot_id, part in _allocate(tx, account_id, credits, now_ms()):
        _move(tx, entry_key, lot_id, -part)
        tx.all("adjust_lot", lot_id=lot_id, remaining=-part, held=0)


def reserve(tx: Tx, *, account_id: str, credits: int, generation_id: str) -> None:
    """Hold ``credits`` on the account's lots in the consumption order for the generation's
    hold (``ledger.holds``). Raises ``InsufficientCredits`` as :func:`take`."""
    for lot_id, part in _allocate(tx, account_id, credits, now_ms()):
        tx.all("insert_hold_lot", generation_id=generation_id, lot_id=lot_id, credits=part)
        tx.all("adjust_lot", lot_id=lot_id, remaining=0, held=part)


def give_back(
    tx: Tx, *, account_id: str, credits: int, from_key: str, entry_key: str, later: Deferred
) -> None:
    """Give ``credits`` back to the lots the entry ``from_key`` took them from (a refund of
    a charge), moved in by the entry ``entry_key``; the lots change in ``later``. A charge
    that moved no lot (written before lots existed) gives back to the opening lot."""
    moves = tx.all("lot_moves_of", entry_key=from_key)
    if sum(-int(m["amount"]) for m in moves) != credits:
        if moves:
            raise LedgerError("a refund differs from its charge's lot moves", entry_key=from_key)
        moves = [{"lot_id": opening_lot(tx, account_id), "amount": -credits}]
    for m in moves:
        _move(tx, entry_key, str(m["lot_id"]), -int(m["amount"]))
        later.lot(str(m["lot_id"]), remaining=-int(m["amount"]))


def move_one(tx: Tx, *, lot_id: str, account_id: str, amount: int, entry_key: str) -> None:
    """Move ``amount`` (signed) into one lot by the entry ``entry_key``: a pack's claw-back
    or restore, on the pack's own lot (which a claw-back may leave below zero, as it may
    the balance); the opening lot when the pack landed before lots existed."""
    if tx.one("lot_by_id", lot_id=lot_id) is None:
        lot_id = opening_lot(tx, account_id)
    _move(tx, entry_key, lot_id, amount)
    tx.all("adjust_lot", lot_id=lot_id, remaining=amount, held=0)


def _move(tx: Tx, entry_key: str, lot_id: str, amount: int) -> None:
    tx.all("insert_lot_move", entry_key=entry_key, lot_id=lot_id, amount=amount)
