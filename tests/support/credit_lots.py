"""Credit lots for tests: grants of each kind, charges in either mode, and what the ledger
holds per kind."""

from __future__ import annotations

from ledger import Ledger
from ledger.lots import LotTerms

DAY_MS = 86_400_000
FAR = 4_102_444_800_000  # 2100-01-01: an expiry the wall clock never reaches in a test


def cycle(ends_at_ms: int = FAR) -> LotTerms:
    return LotTerms("subscription", "cycle_end", expires_at_ms=ends_at_ms)


def after_cancellation(subscription_id: str, days: int = 60) -> LotTerms:
    return LotTerms(
        "subscription",
        "after_cancellation",
        after_cancellation_ms=days * DAY_MS,
        subscription_id=subscription_id,
    )


def charge(ledger: Ledger, gen: str, credits: int, *, mode: str = "debit", acct: str = "a") -> int:
    return ledger.charge(
        generation_id=gen,
        account_id=acct,
        provider="fal",
        operation="video",
        credits=credits,
        provider_job_id=f"job-{gen}",
        mode=mode,
    )


def lots_of(ledger: Ledger, acct: str = "a") -> dict[str, tuple[int, int]]:
    """Lot id → (remaining, held)."""
    return {str(r["lot_id"]): (int(r["remaining"]), int(r["held"])) for r in ledger.lots(acct)}
