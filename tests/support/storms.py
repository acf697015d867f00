"""Many generations charged at once, for the tests that refund them in a storm."""

from __future__ import annotations

from workers import client

__all__ = ["charge_generations"]


def charge_generations(n: int, *, prefix: str = "g", credits: int = 10, top_up: int) -> None:
    """Grant ``top_up`` credits to ``acct`` (once), then charge ``n`` Kling videos of
    ``credits`` each: generation ``<prefix><i>``, job ``job-<prefix><i>``."""
    client.grant(account_id="acct", credits=top_up, idempotency_key="top-up", reason="test")
    for i in range(n):
        client.charge(
            generation_id=f"{prefix}{i}",
            account_id="acct",
            provider="kling",
            operation="video",
            credits=credits,
            provider_job_id=f"job-{prefix}{i}",
        )
