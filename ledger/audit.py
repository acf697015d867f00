"""The ledger's invariants (DESIGN.md), checked against the database as it is.

1. At most one refund per generation; a refund equals its charge (same account, same amount).
2. No refund without a charge.
3. A succeeded generation is never refunded.
5. Each balance equals the sum of its account's entries.
(4, paid packs, arrives with payments.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.backends import Database

__all__ = ["Violation", "audit"]


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
    (5, "audit_balance_mismatch"),
)


def audit(db: Database) -> list[Violation]:
    """Every violation found; an empty list means the ledger is consistent."""
    found: list[Violation] = []
    with db.read() as tx:
        for invariant, name in _CHECKS:
            for row in tx.all(name):
                found.append(Violation(invariant, name.removeprefix("audit_"), dict(row)))
    return found
