"""A charged generation as the ledger holds it, and what settling an outcome did to it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ledger.backends import Row
from ledger.outcomes import Outcome

__all__ = ["Generation", "Settlement"]


@dataclass(frozen=True, slots=True)
class Generation:
    generation_id: str
    account_id: str
    provider: str
    provider_job_id: str | None
    operation: str
    credits: int
    charged_at_ms: int
    outcome: Outcome | None
    outcome_reason: str | None
    next_poll_at_ms: int | None = None
    deadline_at_ms: int | None = None

    @classmethod
    def from_row(cls, row: Row) -> Generation:
        return cls(
            generation_id=row["generation_id"],
            account_id=row["account_id"],
            provider=row["provider"],
            provider_job_id=row["provider_job_id"],
            operation=row["operation"],
            credits=int(row["credits"]),
            charged_at_ms=int(row["charged_at_ms"]),
            outcome=Outcome(row["outcome"]) if row["outcome"] else None,
            outcome_reason=row["outcome_reason"],
            next_poll_at_ms=_int_or_none(row.get("next_poll_at_ms")),
            deadline_at_ms=_int_or_none(row.get("deadline_at_ms")),
        )


class Settlement(StrEnum):
    """What reporting one outcome did to a generation."""

    REFUNDED = "refunded"
    """First terminal outcome, refundable: the charge was refunded now."""
    KEPT = "kept"
    """First terminal outcome, not refundable: the credits are kept."""
    DUPLICATE = "duplicate"
    """The same terminal outcome again: nothing changed."""
    CONFLICT = "conflict"
    """A terminal outcome contradicting the one applied: recorded, never applied."""
    PENDING = "pending"
    """Not terminal: nothing changed."""


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
