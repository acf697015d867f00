"""Charged generations that no result settles, and the stuck sweep run at a given time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.generation import RefundPolicy
from handlers.stuck_sweep import StatusPolls, StuckSweepResult, sweep_stuck_generations
from ledger import Ledger

MINUTE = 60_000
CREDITS = 25
TOP_UP = 1000


def charge_stuck(
    ledger: Ledger, *, gen: str = "g1", provider: str, operation: str = "video", job: str
) -> int:
    """Charge ``gen`` (polled after 10 minutes, hard deadline 45); its charge time in ms."""
    ledger.grant(account_id="acct", credits=TOP_UP, idempotency_key="top", reason="t")
    ledger.charge(
        generation_id=gen,
        account_id="acct",
        provider=provider,
        operation=operation,
        credits=CREDITS,
        provider_job_id=job,
        poll_after_ms=10 * MINUTE,
        deadline_after_ms=45 * MINUTE,
    )
    generation = ledger.generation(gen)
    assert generation is not None
    return generation.charged_at_ms


def sweep_at(
    ledger: Ledger, fetchers: Mapping[str, Any], at_ms: int, **options: Any
) -> StuckSweepResult:
    """The stuck sweep as the scheduler runs it, with the clock fixed at ``at_ms``: batches
    of 200, polls on ``options["polls"]`` or on a pool of 8 of this sweep's own."""
    polls = options.pop("polls", None)
    own = StatusPolls(8) if polls is None else None
    try:
        return sweep_stuck_generations(
            ledger,
            fetchers=fetchers,
            policy=RefundPolicy(),
            polls=polls or own,
            poll_interval_ms=MINUTE,
            default_poll_after_ms=10 * MINUTE,
            default_hard_ms=45 * MINUTE,
            batch=options.pop("batch", 200),
            at_ms=at_ms,
            **options,
        )
    finally:
        if own is not None:
            own.close()
