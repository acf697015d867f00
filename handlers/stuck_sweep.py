"""The stuck-generation sweep: charges with no terminal outcome past their deadline.

Due generations are polled through the provider's status API (``fetchers``: provider →
``JobFetcher``; one that also has ``poll(provider, job_id, operation)``, an
:class:`OperationFetcher`, is given the generation's operation, which picks the endpoint of
APIs that have several); a terminal answer is applied like any reported result. A job the
provider no longer knows (404/410), or no terminal answer by the hard deadline, is refunded
as a system failure: "credits deducted but no output produced". A transient poll failure
changes nothing: the generation is leased and looked at again on a later sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from handlers.generation import RefundPolicy, apply_result
from handlers.thin_events import JobFetcher
from ledger import Generation, Ledger, Outcome, Settlement, now_ms
from ledger.errors import RefundryError
from providers.status_http import JobGone

__all__ = ["OperationFetcher", "StuckSweepResult", "sweep_stuck_generations"]

log = logging.getLogger(__name__)

SYSTEM_FAILURE = "system failure: credits deducted but no output produced"


@runtime_checkable
class OperationFetcher(Protocol):
    """A ``JobFetcher`` whose status query depends on the generation's operation too."""

    def poll(self, provider: str, job_id: str, operation: str | None) -> Mapping[str, Any]:
        """The job's payload; raises ``JobGone`` for a job unknown upstream."""
        ...


@dataclass
class StuckSweepResult:
    looked_at: int = 0
    polled: int = 0
    settled_by_poll: int = 0
    refunded_as_lost: int = 0
    still_pending: int = 0


def sweep_stuck_generations(
    ledger: Ledger,
    *,
    fetchers: Mapping[str, JobFetcher],
    policy: RefundPolicy,
    poll_interval_ms: int,
    default_poll_after_ms: int,
    default_hard_ms: int,
    at_ms: int | None = None,
    limit: int = 200,
) -> StuckSweepResult:
    now = now_ms() if at_ms is None else at_ms
    result = StuckSweepResult()
    due = ledger.claim_due_generations(
        lease_ms=poll_interval_ms,
        default_poll_after_ms=default_poll_after_ms,
        limit=limit,
        at_ms=now,
    )
    for gen in due:
        result.looked_at += 1
        deadline = gen.deadline_at_ms or gen.charged_at_ms + default_hard_ms
        if _poll(ledger, gen, fetchers, policy, now, result):
            continue
        if now >= deadline:
            _refund_as_lost(ledger, gen, f"{SYSTEM_FAILURE} (hard deadline passed)", now, result)
        else:
            result.still_pending += 1
    return result


def _poll(
    ledger: Ledger,
    gen: Generation,
    fetchers: Mapping[str, JobFetcher],
    policy: RefundPolicy,
    now: int,
    result: StuckSweepResult,
) -> bool:
    """True when the poll settled the generation."""
    fetch = fetchers.get(gen.provider)
    if fetch is None or gen.provider_job_id is None:
        return False
    result.polled += 1
    try:
        if isinstance(fetch, OperationFetcher):
            payload = fetch.poll(gen.provider, gen.provider_job_id, gen.operation)
        else:
            payload = fetch(gen.provider, gen.provider_job_id)
    except JobGone as gone:
        _refund_as_lost(
            ledger, gen, f"{SYSTEM_FAILURE} (job unknown upstream, HTTP {gone.status})", now, result
        )
        return True
    except RefundryError as exc:
        log.warning("status poll of %s failed, will retry: %s", gen.generation_id, exc.reason)
        return False
    try:
        applied = apply_result(
            ledger,
            provider=gen.provider,
            payload=payload,
            generation_id=gen.generation_id,
            operation=gen.operation,
            failure_known_at_ms=now,
            policy=policy,
        )
    except RefundryError as exc:
        log.error("status poll of %s unusable: %s", gen.generation_id, exc.reason)
        return False
    if applied.settlement is Settlement.PENDING:
        return False
    result.settled_by_poll += 1
    return True


def _refund_as_lost(
    ledger: Ledger, gen: Generation, reason: str, now: int, result: StuckSweepResult
) -> None:
    settlement = ledger.settle(
        generation_id=gen.generation_id,
        outcome=Outcome.FAILED,
        reason=reason,
        refund=True,
        failure_known_at_ms=now,
    )
    if settlement is Settlement.REFUNDED:
        result.refunded_as_lost += 1
        log.warning("generation %s refunded: %s", gen.generation_id, reason)
