"""A charged generation as the ledger holds it, and what settling an outcome did to it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ledger import keys
from ledger.backends import Row, Tx
from ledger.errors import ResultForAnotherJob
from ledger.outcomes import Outcome

__all__ = [
    "Generation",
    "Settlement",
    "charged_under",
    "decided_by",
    "same_job",
    "set_deadlines",
]


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


def same_job(tx: Tx, gen: Generation, job_id: str) -> None:
    """The result's job is the generation's: the one charged, or, for a charge made
    without one, recorded now unless another generation of the provider holds it."""
    held = gen.provider_job_id
    if held is None:
        # Exact first; then a look-alike by case (never folded when stored or compared
        # for a match: it can only refuse).
        other = tx.one(
            "generation_by_provider_job", provider=gen.provider, provider_job_id=job_id
        ) or tx.one(
            "generation_by_provider_job_lookalike",
            provider=gen.provider,
            provider_job_id=job_id,
        )
        if other is None:
            tx.all("claim_generation_job", generation_id=gen.generation_id, provider_job_id=job_id)
            return
        raise ResultForAnotherJob(
            generation_id=gen.generation_id,
            reported_job_id=job_id,
            held_by=other["generation_id"],
        )
    if held != job_id:
        raise ResultForAnotherJob(
            generation_id=gen.generation_id, charged_job_id=held, reported_job_id=job_id
        )


def charged_under(tx: Tx, generation_id: str) -> str | None:
    """The policy version the generation's charge entry records (the version in force when
    it was charged); None when no charge entry is written yet (a pending hold)."""
    row = tx.one("charge_policy_version", key=keys.charge(generation_id))
    return None if row is None else str(row["policy_version"])


def decided_by(tx: Tx, generation_id: str, policy_version: str, rule: str) -> None:
    """Record on a generation, in ``tx`` with its first terminal outcome, the policy version
    and the rule of it that decided whether it was refunded (a policy key such as
    ``refund_outcomes`` or ``outcomes.kling:video``), for ``refundry explain``."""
    tx.all(
        "set_generation_decision",
        generation_id=generation_id,
        policy_version=policy_version,
        rule=rule,
    )


def set_deadlines(
    tx: Tx, generation_id: str, ts: int, poll_after_ms: int | None, deadline_after_ms: int | None
) -> None:
    """When the stuck-generation sweeper polls a generation charged at ``ts`` (ms since the
    epoch) and when it gives up, each ms after ``ts``; nothing when neither is given."""
    if poll_after_ms is not None or deadline_after_ms is not None:
        tx.all(
            "set_generation_deadlines",
            generation_id=generation_id,
            next_poll_at_ms=ts + (poll_after_ms or 0),
            deadline_at_ms=None if deadline_after_ms is None else ts + deadline_after_ms,
        )
