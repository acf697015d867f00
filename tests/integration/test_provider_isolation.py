"""One provider cannot delay another's refunds: a provider whose API hangs holds at most its
share of a worker process's threads, so the results of healthy providers (and payments) still
find a thread at once (no head-of-line blocking behind the slow provider)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.commands import WorkerProcesses
from tests.support.fake_stripe import FakeStripe
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
    """Sora's thin ``video.failed`` events are fetched from an OpenAI API that hangs for
    longer than the test lasts; a Replicate failure reported after them is refunded while
    the hang goes on (both threads held by the hang would keep it waiting for 300 s)."""
    workers.env |= configure(
        monkeypatch,
        refundry_env,
        OPENAI_API_KEY="sk-isolation-test",
        OPENAI_API_BASE=hanging.url,
        REFUNDRY_STATUS_ATTEMPTS="1",
        REFUNDRY_STATUS_TIMEOUT_S="300",  # outlasts the test: the hang never ends by itself
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
    client.report_result(
        provider="replicate", payload={"id": "rep-1", "status": "failed", "error": "CUDA OOM"}
    )
    wait_until(
        lambda: client.balance("acct") == before + 10,
        timeout=60,
        message="the replicate refund waited behind the hanging provider",
    )
    assert hanging.seen == 1, "the hanging provider held more than its share of threads"


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_a_hanging_stripe_does_not_delay_a_generations_refund(
    stripe_settings: Callable[..., dict[str, str]],
    workers: WorkerProcesses,
    fake: FakeStripe,
) -> None:
    """Every payment event is confirmed at Stripe; Stripe hangs (each call held for longer
    than the test lasts, then retried by the library). A generation's failure reported
    after four payment events is refunded while Stripe still hangs: payments hold Stripe's
    share of the threads, never all of them."""
    workers.env |= stripe_settings({"price_pack500": 500})
    fake.add_price("price_pack500", 1900)
    for i in range(4):
        session, _, _ = fake.create_paid_checkout(f"acct_buyer{i}", "price_pack500", 1900)
        (event,) = fake.events("checkout.session.completed", about=session["id"])
        client.report_payment(provider="stripe", event=event)
    fake.fault("/v1/checkout/sessions/*", None, hang_s=600)
    client.grant(account_id="acct", credits=100, idempotency_key="top", reason="test")
    client.charge(
        generation_id="rep",
        account_id="acct",
        provider="replicate",
        operation="image",
        credits=10,
        provider_job_id="rep-1",
    )
    workers.start(processes=1, threads=2)
    wait_until(
        lambda: any(r.path.startswith("/v1/checkout/sessions/") for r in fake.requests),
        timeout=30,
        message="no payment event reached Stripe",
    )
    client.report_result(
        provider="replicate", payload={"id": "rep-1", "status": "failed", "error": "CUDA OOM"}
    )
    wait_until(
        lambda: client.balance("acct") == 100,
        timeout=60,
        message="the generation's refund waited behind a hanging Stripe",
    )
    assert all(client.balance(f"acct_buyer{i}") == 0 for i in range(4))  # Stripe still hangs
