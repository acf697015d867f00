"""The stuck-generation sweep: charges with no terminal outcome past their deadline.

Due generations are polled through the provider's status API (``fetchers``: provider →
``JobFetcher``; one that also has ``poll(provider, job_id, operation)``, an
:class:`OperationFetcher`, is given the generation's operation, which picks the endpoint of
APIs that have several); a terminal answer is applied like any reported result. A job the
provider no longer knows (404/410), or no terminal answer by the hard deadline, is refunded
as a system failure: "credits deducted but no output produced". A transient poll failure
changes nothing: the generation is leased and looked at again on a later sweep.

No provider can hold up another's refunds: a generation already past its hard deadline is
refunded first, without a poll; the others are polled concurrently (at most
``poll_concurrency`` at once) within one time budget per sweep (``poll_budget_s``); a poll
that has not answered by then is left to a later sweep, and the clock is read again before
each hard-deadline decision. Each generation's failure is its own: logged as an alert, the
sweep goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any, Protocol, TypeVar, runtime_checkable

from handlers.generation import RefundPolicy, apply_result
from handlers.thin_events import JobFetcher
from ledger import Generation, Ledger, Outcome, Settlement, now_ms
from ledger.errors import RefundryError
from providers.status_http import JobGone

__all__ = ["OperationFetcher", "StuckSweepResult", "sweep_stuck_generations"]

log = logging.getLogger(__name__)

SYSTEM_FAILURE = "system failure: credits deducted but no output produced"
T = TypeVar("T")


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
    unanswered: int = 0
    """Polls still running when the sweep's budget ran out (looked at again later)."""
    errors: int = 0
    """Generations whose poll or settlement failed unexpectedly (alerted, isolated)."""


class _Polled(Enum):
    SETTLED = "settled"
    LOST = "lost"
    PENDING = "pending"
    ALREADY_SETTLED = "already settled"


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
    poll_concurrency: int = 8,
    poll_budget_s: float = 20.0,
) -> StuckSweepResult:
    """Settle the charged generations past their poll time (at most ``limit`` per sweep).

    ``at_ms`` fixes the clock (tests); otherwise it is read again before each decision.
    Returns the counts of what was done; one generation's failure is logged and counted in
    ``errors``, never raised.
    """

    def clock() -> int:
        return now_ms() if at_ms is None else at_ms

    result = StuckSweepResult()
    due = ledger.claim_due_generations(
        lease_ms=poll_interval_ms,
        default_poll_after_ms=default_poll_after_ms,
        limit=limit,
        at_ms=clock(),
    )
    result.looked_at = len(due)

    def past_hard_deadline(gen: Generation) -> bool:
        return clock() >= (gen.deadline_at_ms or gen.charged_at_ms + default_hard_ms)

    def refund_as_lost(gen: Generation) -> None:
        reason = f"{SYSTEM_FAILURE} (hard deadline passed)"
        if _refund_as_lost(ledger, gen, reason, clock(), policy):
            result.refunded_as_lost += 1

    to_poll: list[Generation] = []
    for gen in due:
        if past_hard_deadline(gen):
            _isolated(result, gen, partial(refund_as_lost, gen))
        elif gen.provider in fetchers and gen.provider_job_id is not None:
            to_poll.append(gen)
        else:
            result.still_pending += 1
    if not to_poll:
        return result

    def poll(gen: Generation) -> _Polled:
        return _poll(ledger, gen, fetchers[gen.provider], policy, clock)

    pool = ThreadPoolExecutor(max_workers=max(1, poll_concurrency), thread_name_prefix="poll")
    try:
        futures = {pool.submit(poll, gen): gen for gen in to_poll}
        result.polled = len(futures)
        done, not_done = wait(futures, timeout=poll_budget_s)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a hung poll is not waited for
    result.unanswered = len(not_done)
    for future in done:
        gen = futures[future]
        polled = _isolated(result, gen, future.result)
        if polled is _Polled.SETTLED:
            result.settled_by_poll += 1
        elif polled is _Polled.LOST:
            result.refunded_as_lost += 1
        elif polled is _Polled.PENDING and past_hard_deadline(gen):
            _isolated(result, gen, partial(refund_as_lost, gen))
        elif polled is _Polled.PENDING:
            result.still_pending += 1
    if result.unanswered:
        log.warning(
            "stuck sweep: %d status polls unanswered after %.0f s; looked at again next sweep",
            result.unanswered,
            poll_budget_s,
        )
    return result


def _isolated(result: StuckSweepResult, gen: Generation, step: Callable[[], T]) -> T | None:
    """Run one generation's step; an unexpected failure is alerted and counted, not raised."""
    try:
        return step()
    except Exception:
        result.errors += 1
        log.exception("stuck sweep: generation %s failed; the sweep goes on", gen.generation_id)
        return None


def _poll(
    ledger: Ledger,
    gen: Generation,
    fetch: JobFetcher,
    policy: RefundPolicy,
    clock: Callable[[], int],
) -> _Polled:
    """Poll one generation and apply a terminal answer (a job gone upstream: refunded)."""
    job_id = gen.provider_job_id
    if job_id is None:
        return _Polled.PENDING
    try:
        if isinstance(fetch, OperationFetcher):
            payload = fetch.poll(gen.provider, job_id, gen.operation)
        else:
            payload = fetch(gen.provider, job_id)
    except JobGone as gone:
        reason = f"{SYSTEM_FAILURE} (job unknown upstream, HTTP {gone.status})"
        refunded = _refund_as_lost(ledger, gen, reason, clock(), policy)
        return _Polled.LOST if refunded else _Polled.ALREADY_SETTLED
    except RefundryError as exc:
        log.warning("status poll of %s failed, will retry: %s", gen.generation_id, exc.reason)
        return _Polled.PENDING
    try:
        applied = apply_result(
            ledger,
            provider=gen.provider,
            payload=payload,
            generation_id=gen.generation_id,
            operation=gen.operation,
            failure_known_at_ms=clock(),
            policy=policy,
        )
    except RefundryError as exc:
        log.error("status poll of %s unusable: %s", gen.generation_id, exc.reason)
        return _Polled.PENDING
    return _Polled.PENDING if applied.settlement is Settlement.PENDING else _Polled.SETTLED


def _refund_as_lost(
    ledger: Ledger, gen: Generation, reason: str, now: int, policy: RefundPolicy
) -> bool:
    """Settle a generation whose job is lost as failed (refunded as the policy says a
    failure is); True when this call refunded it."""
    settlement = ledger.settle(
        generation_id=gen.generation_id,
        outcome=Outcome.FAILED,
        reason=reason,
        refund=policy.refunds(Outcome.FAILED),
        failure_known_at_ms=now,
    )
    if settlement is Settlement.REFUNDED:
        log.warning("generation %s refunded: %s", gen.generation_id, reason)
        return True
    return False
