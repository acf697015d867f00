"""The values the payments ledger speaks in: a purchase as recorded, a grant's result, a
reversal of a payment (the cause of a claw-back), and the provider idempotency key of our own
refund of a purchase."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ledger import keys
from ledger.backends import Row

__all__ = ["GrantResult", "Payment", "Reversal", "refund_key"]


class GrantResult(StrEnum):
    GRANTED = "granted"
    ALREADY_GRANTED = "already_granted"
    NOT_PAID = "not_paid"
    INCOMPLETE = "incomplete"
    """Paid, but the account or the pack is not known yet (another event will tell)."""
    DUPLICATE = "duplicate"
    """The same pack was just granted to the same customer for the same amount."""
    REFUND_WON = "refund_won"
    """The purchase was refunded: its credits never land."""
    REFUNDING = "refunding"
    """Our refund of the purchase is begun but not confirmed: the caller carries it on."""
    SUPERSEDES = "supersedes"
    """Granted (now or before), and the later identical purchase that had landed first is
    being refunded as its duplicate: the caller carries that refund on."""


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
    refund_attempt: int = 0
    """Our refund's attempt number: its provider idempotency key is ``refund_key(…, n)``."""
    duplicate_of: str | None = None
    """The purchase this one duplicates (refunded as ``duplicate``), when it is one."""

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
            refund_attempt=int(r["refund_attempt"]),
            duplicate_of=r["duplicate_of"],
        )

    @property
    def buyer(self) -> str | None:
        """Who paid, for telling a duplicate: the provider's customer, else (a guest checkout
        makes no customer) the account."""
        if self.customer is not None:
            return self.customer
        return None if self.account_id is None else f"account:{self.account_id}"

    @property
    def refund_key(self) -> str:
        """The provider idempotency key of our refund's current attempt."""
        return refund_key(self.purchase_key, self.refund_attempt)


def refund_key(purchase_key: str, attempt: int = 0) -> str:
    """The payment provider's idempotency key for our refund of this purchase (``attempt``:
    see ``ledger.keys.provider_refund``)."""
    return keys.provider_refund(purchase_key, attempt)


REVERSAL_STATES = ("pending", "succeeded", "failed")


@dataclass(frozen=True, slots=True)
class Reversal:
    """Money of a purchase that went back, keyed by its cause: ``cause_id`` is the refund's id
    (``kind`` ``refund``) or the lost dispute's (``kind`` ``dispute``); ``amount`` is in the
    currency's minor unit. The same cause told again, by any event, is the same reversal.

    ``state``: only a ``succeeded`` reversal is money back (its claw-back is taken); a
    ``pending`` refund is remembered until it succeeds or fails; a ``failed`` one that had
    succeeded gives its claw-back back. ``pending`` → ``succeeded`` → ``failed`` only."""

    cause_id: str
    kind: str
    amount: int
    state: str = "succeeded"

    def __post_init__(self) -> None:
        if self.state not in REVERSAL_STATES:
            raise ValueError(f"reversal state must be one of {REVERSAL_STATES}")
