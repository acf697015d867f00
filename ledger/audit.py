"""The ledger's invariants (DESIGN.md), checked against the database as it is.

1. At most one refund per generation; a refund equals its charge (same account, same amount).
2. No refund without a charge.
3. A succeeded generation is never refunded.
4. Every paid pack is granted exactly once, or refunded — never both (unless its credits
   were clawed back in full), never neither after the landing window.
5. Each balance equals the sum of its account's entries; per credit kind too: each kind's
   balance equals the credits entries moved into and out of its lots, the kinds add up to
   the balance, and each entry (since lots exist) moved exactly its amount.
6. Every balance, entry amount and charged amount is a whole number of credits.
7. Held credits (account and lot) equal the credits of pending holds.
8. Every entry has its event out (an outbox row, written with it: ``ledger.outbox``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.backends import Database
from ledger.clock import now_ms

__all__ = ["LANDING_WINDOW_MS", "Violation", "audit"]


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: int
    check: str
    detail: dict[str, Any]

    def __str__(self) -> str:
        fields = " ".join(f"{k}={v}" for k, v in self.detail.items())
        return f"invariant {self.invariant} {self.check}: {fields}"


_CHECKS: tuple[tuple[int, str], ...] = (
    (1, "audit_duplicate_refunds"),
    (1, "audit_refund_not_matching_charge"),
    (2, "audit_refund_without_charge"),
    (2, "audit_generation_without_charge"),
    (3, "audit_succeeded_refunded"),
    (4, "audit_pack_granted_and_refunded"),
    (4, "audit_pack_granted_state_without_grant"),
    (4, "audit_pack_unlanded_past_window"),
    (5, "audit_balance_mismatch"),
    (5, "audit_kind_balance_mismatch"),
    (5, "audit_balance_not_in_kinds"),
    (5, "audit_entry_not_in_kinds"),
    (6, "audit_fractional_credits"),
    (7, "audit_held_mismatch"),
    (8, "audit_entry_without_event"),
)


LANDING_WINDOW_MS = 3_600_000
"""The default time a paid pack may take to land before it breaks invariant 4."""


def audit(db: Database, *, landing_window_ms: int = LANDING_WINDOW_MS) -> list[Violation]:
    """Every violation found; an empty list means the ledger is consistent.

    A paid pack still neither granted nor refunded ``landing_window_ms`` after payment
    breaks invariant 4 (reconciliation should have settled it).
    """
    found: list[Violation] = []
    params = {"paid_before_ms": now_ms() - landing_window_ms}
    with db.read() as tx:
        for invariant, name in _CHECKS:
            wanted = params if name == "audit_pack_unlanded_past_window" else {}
            for row in tx.all(name, **wanted):
                found.append(Violation(invariant, name.removeprefix("audit_"), dict(row)))
    return found
