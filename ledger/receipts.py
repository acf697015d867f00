"""A generation's receipt as the ledger holds it: its charge, its first terminal outcome and
its refund entry, read in one query."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.backends import Database
from ledger.generations import Generation

__all__ = ["Receipt", "read_receipt"]


@dataclass(frozen=True, slots=True)
class Receipt:
    """``generation`` as charged (credits are whole numbers; times are epoch ms, UTC), when
    its first terminal outcome was recorded, and its refund entry if there is one: the
    credits given back, when the refund was applied, and the policy version it records.
    ``hold_state`` is that of its hold (``pending``, ``posted``, ``voided``; None when
    charged as a debit): a voided hold was never charged. ``decided_policy_version`` is the
    version that decided its first terminal outcome, ``charge_policy_version`` the one its
    charge entry records (the version that judges it)."""

    generation: Generation
    outcome_at_ms: int | None
    refund_credits: int | None
    refunded_at_ms: int | None
    refund_failure_known_at_ms: int | None
    refund_policy_version: str | None
    hold_state: str | None = None
    decided_policy_version: str | None = None
    charge_policy_version: str | None = None


def read_receipt(db: Database, generation_id: str) -> Receipt | None:
    """The receipt of ``generation_id``; None when no charge is recorded for it."""
    with db.read() as tx:
        row = tx.one("generation_receipt", generation_id=generation_id)
    if row is None:
        return None
    return Receipt(
        generation=Generation.from_row(row),
        outcome_at_ms=_int(row["outcome_at_ms"]),
        refund_credits=_int(row["refund_credits"]),
        refunded_at_ms=_int(row["refunded_at_ms"]),
        refund_failure_known_at_ms=_int(row["refund_failure_known_at_ms"]),
        refund_policy_version=row["refund_policy_version"],
        hold_state=row.get("hold_state"),
        decided_policy_version=row.get("decided_policy_version"),
        charge_policy_version=row.get("charge_policy_version"),
    )


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))
