"""What the ledger holds about one generation or one purchase, read for ``refundry explain``
and ``refundry eligibility``: its row, the decisions taken about it (with the policy version
and rule each was made under, migration 0018) and the ledger entries they wrote. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.backends import Database, Row
from ledger.generations import Generation
from ledger.payment_types import Payment

__all__ = ["Decided", "EntryRow", "History"]


@dataclass(frozen=True, slots=True)
class EntryRow:
    """One ledger entry: ``amount`` in whole credits (negative: taken), times in ms since
    the epoch (``failure_known_at_ms`` only on a refund)."""

    idempotency_key: str
    account_id: str
    kind: str
    amount: int
    reason: str
    policy_version: str
    created_at_ms: int
    applied_at_ms: int
    failure_known_at_ms: int | None

    @classmethod
    def from_row(cls, r: Row) -> EntryRow:
        known = r["failure_known_at_ms"]
        return cls(
            idempotency_key=str(r["idempotency_key"]),
            account_id=str(r["account_id"]),
            kind=str(r["kind"]),
            amount=int(r["amount"]),
            reason=str(r["reason"]),
            policy_version=str(r["policy_version"]),
            created_at_ms=int(r["created_at_ms"]),
            applied_at_ms=int(r["applied_at_ms"]),
            failure_known_at_ms=None if known is None else int(known),
        )


@dataclass(frozen=True, slots=True)
class Decided:
    """One decision: what (``decision``: an outcome applied, ``grant``, ``refund``, …), why,
    when (ms since the epoch), and the policy version and rule it was made under (None:
    decided before they were recorded, or by no rule: an alert, a fact)."""

    decision: str
    reason: str
    at_ms: int
    policy_version: str | None
    rule: str | None


class History:
    """Reads of one ledger database ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def generation(self, generation_id: str) -> tuple[Generation, Decided | None] | None:
        """The generation and the decision on its first terminal outcome (None while it
        has none), or None when no generation has this id."""
        with self.db.read() as tx:
            row = tx.one("generation_by_id", generation_id=generation_id)
        if row is None:
            return None
        gen = Generation.from_row(row)
        if gen.outcome is None:
            return gen, None
        decided = Decided(
            gen.outcome.value,
            str(row["outcome_reason"] or ""),
            int(row["outcome_at_ms"]),
            _text(row.get("decided_policy_version")),
            _text(row.get("decided_rule")),
        )
        return gen, decided

    def conflicts(self, generation_id: str) -> list[Decided]:
        """The outcomes reported after the first and never applied (no version, no rule)."""
        with self.db.read() as tx:
            rows = tx.all("outcome_reports_for", generation_id=generation_id)
        return [
            Decided(
                f"conflict: {r['outcome']}", str(r["reason"]), int(r["received_at_ms"]), None, None
            )
            for r in rows
            if r["disposition"] == "conflict"
        ]

    def purchase(self, purchase_id: str) -> Payment | None:
        """The purchase ``purchase_id`` names: its key (a PaymentIntent, or the Checkout
        Session of one with nothing to pay), its Checkout Session, or its charge."""
        with self.db.read() as tx:
            row = (
                tx.one("payment_by_key", purchase_key=purchase_id)
                or tx.one("payment_by_session", session_id=purchase_id)
                or tx.one("payment_by_charge", charge_id=purchase_id)
            )
        return Payment.from_row(row) if row else None

    def decisions(self, key: str) -> list[Decided]:
        """Every decision recorded under ``key`` (a purchase's, or an invoice's), in order."""
        with self.db.read() as tx:
            rows = tx.all("payment_decisions_explained", purchase_key=key)
        return [
            Decided(
                str(r["decision"]),
                str(r["reason"]),
                int(r["at_ms"]),
                _text(r["policy_version"]),
                _text(r["rule"]),
            )
            for r in rows
        ]

    def purchase_entries(self, purchase_key: str) -> list[EntryRow]:
        """The entries a purchase wrote (its grant, claw-backs, restores), in order."""
        with self.db.read() as tx:
            rows = tx.all("entries_of_purchase", purchase_key=purchase_key)
        return [EntryRow.from_row(r) for r in rows]

    def generation_entries(self, generation_id: str) -> list[EntryRow]:
        """The entries of a generation (its charge, its refund), in order."""
        with self.db.read() as tx:
            rows = tx.all("entries_of_generation", generation_id=generation_id)
        return [EntryRow.from_row(r) for r in rows]

    def lot_remaining(self, lot_id: str, at_ms: int) -> int | None:
        """The credits left in lot ``lot_id`` as the ledger stood at ``at_ms`` (ms since the
        epoch): its moves by the entries applied by then. None when no such lot exists (a
        grant written before lots existed)."""
        with self.db.read() as tx:
            row = tx.one("lot_remaining_at", lot_id=lot_id, at_ms=at_ms)
        return None if row is None else int(row["remaining"])

    def balance(self, account_id: str) -> int:
        """The account's balance in credits (0 for an account never seen)."""
        with self.db.read() as tx:
            row = tx.one("account_balance", account_id=account_id)
        return 0 if row is None else int(row["balance"])


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
