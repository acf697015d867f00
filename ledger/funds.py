"""What an account holds: its balance, the credits pending holds reserve, and both per
credit kind (``ledger.lots``)."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.backends import Tx

__all__ = ["Funds", "read_funds"]


@dataclass(frozen=True, slots=True)
class Funds:
    """An account's credits: ``balance`` (the sum of its entries), ``held`` (reserved by
    pending holds, not spent), ``available`` (balance less held: what a charge may take),
    and per credit kind ``kinds`` (kind → (balance, held)). Whole credits."""

    balance: int
    held: int
    kinds: dict[str, tuple[int, int]]

    @property
    def available(self) -> int:
        return self.balance - self.held


def read_funds(tx: Tx, account_id: str) -> Funds:
    """The account's :class:`Funds` in ``tx``; zeros for an account never seen."""
    row = tx.one("account_funds", account_id=account_id)
    if row is None:
        return Funds(0, 0, {})
    kinds = {
        str(r["credit_kind"]): (int(r["remaining"]), int(r["held"]))
        for r in tx.all("kind_balances", account_id=account_id)
    }
    return Funds(int(row["balance"]), int(row["held"]), kinds)


def available(tx: Tx, account_id: str) -> int:
    """The credits the account may spend now (balance less held; 0 for one never seen)."""
    return read_funds(tx, account_id).available
