"""The stuck-generation sweep: charges with no terminal outcome past their deadline.

Due generations are polled through the provider's status API (``fetchers``: provider →
``JobFetcher``; one that also has ``poll(provider, job_id, operation)``, an
:class:`OperationFetcher`, is given the generation's operation, which picks the endpoint of
APIs that have several); a terminal answer is applied like any reported result. A job the
provider no longer knows (404/410), or no terminal answer by the hard deadline, is refunded
as a system failure: "credits deducted but no output produced". A transient poll failure
changes nothing: the generation is leased and looked at again on a later sweep.

Whatever the backlog, every generation past its hard deadline is refunded by the sweep
that finds it: the sweep claims ``batch`` generations at a time and goes on until fewer are
due. A result that reached the inbox by the hard deadline and waits to be applied decides
instead of the deadline: the sweep applies it as a worker would. The refund's failure is
known from the hard deadline (the moment it became knowable), so the SLA report sees a
refund made late.

No provider can hold up another's refunds: a generation already past its hard deadline is
refunded without a poll; the others are polled on the process's :class:`StatusPolls` (at
most its ``concurrency`` at once, counting the polls earlier sweeps stopped waiting for)
within one time budget per sweep (``poll_budget_s``); a poll that has not answered by then
is left to a later sweep, and the clock is read again before each hard-deadline decision.
Each generation's failure is its own: logged as an alert, the sweep goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any, Protocol, TypeVar, runtime_checkable

from handlers.generation import RefundPolicy, apply_kept_result, apply_result, reported_job_id
from handlers.thin_events import JobFetcher
from ledger import Generation, Ledger, Outcome, Settlement, now_ms
from ledger.errors import RefundryError
from ledger.generations import charged_under
from providers.status_http import JobGone

__all__ = ["OperationFetcher", "StatusPolls", "StuckSweepResult", "sweep_stuck_generations"]

log = logging.getLogger(__name__)

SYSTEM_FAILURE = "system failure: credits deducted but no output produced"
T = TypeVar("T")


@runtime_checkable
class OperationFetcher(Protocol):
    """A ``JobFetcher`` whose status query depends on the generation's operation too."""

    def poll(self, provider: str, job_id: str, operation: str | None) -> Mapping[str, Any]:
        """The job's payload; raises ``JobGone`` for a job unknown upstream."""
        ...


class StatusPolls:
    """The status polls of one process: at most ``concurrency`` run at once, across sweeps.

    A poll a sweep stopped waiting for keeps its place until it returns (its status client's
    own timeouts end it), so the next sweep starts fewer; a poll still queued when its sweep's
    budget ends is cancelled, never started late. One per process (``workers.runtime``).
    """

    def __init__(self, concurrency: int) -> None:
        self.concurrency = max(1, concurrency)
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="poll")

    def submit(self, poll: Callable[[], T]) -> Future[T]:
        """Queue ``poll``; it starts when fewer than ``concurrency`` polls are running."""
        return self._pool.submit(poll)

    def close(self) -> None:
        """Cancel the queued polls; a running one is not waited for."""
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class StuckSweepResult:
    looked_at: int = 0
    polled: int = 0
    settled_by_poll: int = 0
    settled_by_kept_result: int = 0
    """Past the hard deadline, settled by a result kept in the inbox in time."""
    refunded_as_lost: int = 0
    still_pending: int = 0
    unanswered: int = 0
    """Polls not answered within the sweep's budget (looked at again later)."""
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
    polls: StatusPolls,
    poll_interval_ms: int,
    default_poll_after_ms: int,
    default_hard_ms: int,
    batch: int,
    at_ms: int | None = None,
    poll_budget_s: float = 20.0,
) -> StuckSweepResult:
    """Settle the charged generations past their poll time, claimed ``batch`` at a time
    until fewer are due (each leased for ``poll_interval_ms``).

    ``at_ms`` fixes the clock (tests); otherwise it is read again before each decision.
    Returns the counts of what was done; one generation's failure is logged and counted in
    ``errors``, never raised.
    """

    def clock() -> int:
        return now_ms() if at_ms is None else at_ms

    started = time.monotonic()
    result = StuckSweepResult()

    def hard_deadline(gen: Generation) -> int:
        return gen.deadline_at_ms or gen.charged_at_ms + default_hard_ms

    def at_deadline(gen: Generation) -> None:
        fetch = fetchers.get(gen.provider)
        if _settled_by_kept_result(ledger, gen, hard_deadline(gen), policy, fetch):
            result.settled_by_kept_result += 1
            return
        reason = f"{SYSTEM_FAILURE} (hard deadline passed)"
        if _refund_as_lost(ledger, gen, reason, hard_deadline(gen), policy):
            result.refunded_as_lost += 1

    def poll(gen: Generation) -> _Polled:
        return _poll(ledger, gen, fetchers[gen.provider], policy, clock, hard_deadline(gen))

    futures: dict[Future[_Polled], Generation] = {}
    while True:
        due = ledger.claim_due_generations(
            lease_ms=poll_interval_ms,
            default_poll_after_ms=default_poll_after_ms,
            limit=batch,
            at_ms=clock(),
        )
        result.looked_at += len(due)
        for gen in due:
            if clock() >= hard_deadline(gen):
                _isolated(result, gen, partial(at_deadline, gen))
            elif gen.provider in fetchers and gen.provider_job_id is not None:
                futures[polls.submit(partial(poll, gen))] = gen
            else:
                result.still_pending += 1
        if len(due) < batch:
            break
    if not futures:
        return result

    result.polled = len(futures)
    budget_left = max(0.0, poll_budget_s - (time.monotonic() - started))
    done, not_done = wait(futures, timeout=budget_left)
    for future in not_done:
        future.cancel()  # still queued behind running polls: never started after the budget
    result.unanswered = len(not_done)
    for future in done:
        gen = futures[future]
        polled = _isolated(result, gen, future.result)
        if polled is _Polled.SETTLED:
            result.settled_by_poll += 1
        elif polled is _Polled.LOST:
            result.refunded_as_lost += 1
        elif polled is _Polled.PENDING and clock() >= hard_deadline(gen):
            _isolated(result, gen, partial(at_deadline, gen))
        elif polled is _Polled.PENDING:
            result.still_pending += 1
    if result.unanswered:
        log.warning(
            "stuck sweep: %d status polls unanswered after %.0f s; looked at again next sweep",
            result.unanswered,
            poll_budget_s,
        )
    return result


def _settled_by_kept_result(
    ledger: Ledger,
    gen: Generation,
    deadline_ms: int,
    policy: RefundPolicy,
    fetch: JobFetcher | None,
) -> bool:
    """Apply the results kept for ``gen`` by its hard deadline and not applied yet (a worker
    would have); True when one settled it. A result that cannot be applied for good
    (another job's, unclassifiable) leaves the decision to the deadline; a transient failure
    is raised (the generation is looked at again after its lease)."""
    kept = ledger.inbox.pending_results(
        provider=gen.provider, generation_id=gen.generation_id, received_by_ms=deadline_ms
    )
    for item in kept:
        if item.generation_id is None and reported_job_id(item.provider, item.payload) != (
            gen.provider_job_id
        ):
            continue
        try:
            applied = apply_kept_result(ledger, item, policy=policy, fetch_job=fetch)
        except RefundryError as exc:
            if not exc.permanent:
                raise
            log.warning("kept result %s of %s unusable: %s", item.id, gen.generation_id, exc)
            continue
        if applied.settlement is not Settlement.PENDING:
            return True
    return False


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
    deadline_ms: int,
) -> _Polled:
    """Poll one generation and apply a terminal answer (a job gone upstream: refunded); a
    failure is known when the poll found it, or at the hard deadline if that came first."""
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
        refunded = _refund_as_lost(ledger, gen, reason, min(clock(), deadline_ms), policy)
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
            failure_known_at_ms=min(clock(), deadline_ms),
            policy=policy,
        )
    except RefundryError as exc:
        log.error("status poll of %s unusable: %s", gen.generation_id, exc.reason)
        return _Polled.PENDING
    return _Polled.PENDING if applied.settlement is Settlement.PENDING else _Polled.SETTLED


def _refund_as_lost(
    ledger: Ledger, gen: Generation, reason: str, known_at_ms: int, policy: RefundPolicy
) -> bool:
    """Settle a generation whose job is lost as failed (refunded as the policy says a
    failure is), its failure known at ``known_at_ms``; True when this call refunded it."""
    with ledger.db.read() as tx:
        recorded = charged_under(tx, gen.generation_id)
    verdict = policy.judge(gen, Outcome.FAILED, recorded)
    settlement = ledger.settle(
        generation_id=gen.generation_id,
        outcome=Outcome.FAILED,
        reason=reason,
        refund=verdict.refund,
        failure_known_at_ms=known_at_ms,
        policy_version=verdict.policy_version,
        rule=verdict.rule,
    )
    if settlement is Settlement.REFUNDED:
        log.warning("generation %s refunded: %s", gen.generation_id, reason)
        return True
    return False
