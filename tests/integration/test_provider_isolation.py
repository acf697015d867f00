"""One provider cannot delay another's refunds: a provider whose API hangs holds at most its
share of a worker process's threads, so the results of healthy providers (and payments) still
find a thread at once (no head-of-line blocking behind the slow provider)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.commands import WorkerProcesses
from tests.support.hanging_api import HangingAPI
from tests.support.settings import configure
from tests.support.waiting import wait_until
from workers import client


@pytest.fixture
def hanging() -> Iterator[HangingAPI]:
    api = HangingAPI()
    yield api
    api.close()


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_a_hanging_provider_does_not_delay_another_providers_refund(
    refundry_env: dict[str, str],
    workers: WorkerProcesses,
    hanging: HangingAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sora's thin ``video.failed`` events are fetched from an OpenAI API that hangs (one
    attempt of 20 s each); a Replicate failure reported after them is refunded at once."""
    workers.env |= configure(
        monkeypatch,
        refundry_env,
        OPENAI_API_KEY="sk-isolation-test",
        OPENAI_API_BASE=hanging.url,
        REFUNDRY_STATUS_ATTEMPTS="1",
        REFUNDRY_STATUS_TIMEOUT_S="20",
    )
    client.grant(account_id="acct", credits=1000, idempotency_key="top", reason="test")
    for i in range(4):
        client.charge(
            generation_id=f"sora{i}",
            account_id="acct",
            provider="openai",
            operation="video",
            credits=40,
            provider_job_id=f"video_{i}",
        )
        client.report_result(
            provider="openai",
            payload={
                "id": f"evt_sora{i}",
                "object": "event",
                "created_at": int(time.time()),
                "type": "video.failed",
                "data": {"id": f"video_{i}"},
            },
        )
    client.charge(
        generation_id="rep",
        account_id="acct",
        provider="replicate",
        operation="image",
        credits=10,
        provider_job_id="rep-1",
    )
    workers.start(processes=1, threads=2)
    wait_until(lambda: hanging.seen >= 1, timeout=30, message="no fetch reached the API")
    before = client.balance("acct")
    reported = time.monotonic()
    client.report_result(
        provider="replicate", payload={"id": "rep-1", "status": "failed", "error": "CUDA OOM"}
    )
    wait_until(
        lambda: client.balance("acct") == before + 10,
        timeout=60,
        message="the replicate refund waited behind the hanging provider",
    )
    waited = time.monotonic() - reported
    assert waited < 5, f"refunded {waited:.1f} s after it was reported"
    assert hanging.seen == 1, "the hanging provider held more than its share of threads"
