"""Each route end to end: a provider's verified failure, posted to the real ``refundry web``,
is kept, enqueued on the real Redis broker and refunded by real worker processes, exactly
once; a Stripe pack paid twice lands once and the duplicate is refunded at (fake) Stripe."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import Outcome, audit
from tests.integration.conftest import WorkerProcesses
from tests.support.fake_status_apis import replicate_prediction, suno_api, suno_record
from tests.support.fake_stripe import FakeStripe
from tests.support.fake_videos_api import FakeVideosAPI, video
from tests.support.ingress import (
    FalSigner,
    IngressServer,
    body,
    jwks_server,
    jwks_url,
    standard_headers,
    start,
    stripe_headers,
    suno_headers,
)
from tests.support.scripted_http import Reply, ScriptedHTTPServer
from tests.support.stripe_events import envelope
from tests.support.waiting import wait_until
from workers import client, runtime
from workers.demo_payloads import demo_payload

OPENAI = "whsec_" + "ZTJlLW9wZW5haS1pbmdyZXNzLXNlY3JldC0zMi1ieXRlcw=="
KLING = "whsec_" + "ZTJlLWtsaW5nLWluZ3Jlc3Mtc2VjcmV0LTMyLWJ5dGVzIQ=="
REPLICATE = "whsec_" + "ZTJlLXJlcGxpY2F0ZS1pbmdyZXNzLXNlY3JldC0zMmJ5dA=="
STRIPE = "whsec_e2e_stripe_ingress_secret_0123"
SUNO = "e2e-kie-hmac-key"
TOP_UP, CREDITS = 1000, 40
PRICE, AMOUNT, PACK = "price_pack500", 1900, 500


@pytest.fixture
def fakes() -> Iterator[dict[str, ScriptedHTTPServer]]:
    fal_key = FalSigner("fal-e2e")
    servers: dict[str, ScriptedHTTPServer] = {
        "videos": FakeVideosAPI(),
        "suno": suno_api(),
        "jwks": jwks_server(fal_key),
    }
    for server in servers.values():
        server.start()
    servers["jwks"].signer = fal_key  # type: ignore[attr-defined]
    yield servers
    for server in servers.values():
        server.close()


@pytest.fixture
def web_env(
    refundry_env: dict[str, str],
    fakes: dict[str, ScriptedHTTPServer],
    fake: FakeStripe,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    extra = {
        "OPENAI_WEBHOOK_SECRET": OPENAI,
        "KLING_WEBHOOK_SECRET": KLING,
        "REPLICATE_WEBHOOK_SECRET": REPLICATE,
        "STRIPE_WEBHOOK_SECRET": STRIPE,
        "SUNO_WEBHOOK_SECRET": SUNO,
        "FAL_JWKS_URL": jwks_url(fakes["jwks"]),
        "OPENAI_API_KEY": "sk-e2e-openai",
        "OPENAI_API_BASE": fakes["videos"].url,
        "SUNO_API_KEY": "e2e-suno-key",
        "SUNO_API_BASE": fakes["suno"].url,
        "STRIPE_API_KEY": "sk_test_e2e_ingress",
        "STRIPE_API_BASE": fake.url,
        "REFUNDRY_PACKS": f'{{"{PRICE}": {PACK}}}',
    }
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    return refundry_env | extra


@pytest.fixture
def web(web_env: dict[str, str], tmp_path: Path) -> Iterator[IngressServer]:
    server = start(web_env, tmp_path)
    yield server
    server.close()


def _charge(generation: str, provider: str, job: str) -> None:
    client.charge(
        generation_id=generation,
        account_id="acct",
        provider=provider,
        operation="music" if provider == "suno" else "video",
        credits=CREDITS,
        provider_job_id=job,
    )


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_a_verified_failure_on_every_provider_route_is_refunded_once_through_the_workers(
    web: IngressServer,
    workers: WorkerProcesses,
    web_env: dict[str, str],
    fakes: dict[str, ScriptedHTTPServer],
) -> None:
    workers.env |= web_env
    client.grant(account_id="acct", credits=TOP_UP, idempotency_key="top-up", reason="test")
    jobs = {
        "kling": "kt-e2e-1",
        "replicate": "rpl-e2e-1",
        "fal": str(uuid.uuid4()),
        "openai": "video_e2e1",
        "suno": "task-e2e-1",
    }
    for provider, job in jobs.items():
        _charge(f"g-{provider}", provider, job)
    assert client.balance("acct") == TOP_UP - len(jobs) * CREDITS

    fakes["videos"].script("video_e2e1", Reply(200, video("video_e2e1", "failed")))
    fakes["suno"].script(
        "task-e2e-1", Reply(200, suno_record("task-e2e-1", "GENERATE_AUDIO_FAILED"))
    )
    deliveries = {
        "kling": body(demo_payload("kling", jobs["kling"], "failed")),
        "replicate": body(replicate_prediction(jobs["replicate"], "failed", error="CUDA OOM")),
        "fal": body(demo_payload("fal", jobs["fal"], "failed")),
        "openai": body(
            {
                "id": "evt_e2e1",
                "object": "event",
                "created_at": int(time.time()),
                "type": "video.failed",
                "data": {"id": "video_e2e1"},
            }
        ),
        "suno": body(
            {
                "code": 501,
                "msg": "failed",
                "data": {"callbackType": "error", "task_id": "task-e2e-1"},
            }
        ),
    }
    secrets = {"kling": KLING, "replicate": REPLICATE, "openai": OPENAI}
    signer: FalSigner = fakes["jwks"].signer  # type: ignore[attr-defined]
    for route, text in deliveries.items():
        if route in secrets:
            headers = standard_headers(secrets[route], text, webhook_id=f"msg_{route}")
        elif route == "fal":
            headers = signer.headers(text, request_id=jobs["fal"])
        else:
            headers = suno_headers(SUNO, jobs["suno"])
        response = web.post(route, text, headers)
        assert response.status_code == 200, (route, response.status_code)
        assert web.post(route, text, headers).json()["redelivery"] is True  # the provider retried

    workers.start(processes=2, threads=4)
    ledger = runtime.ledger()

    def outcomes() -> dict[str, Outcome | None]:
        found = {p: ledger.generation(f"g-{p}") for p in jobs}
        return {p: g.outcome if g is not None else None for p, g in found.items()}

    wait_until(
        lambda: None not in outcomes().values(), timeout=90, message="not every route settled"
    )
    assert outcomes() == dict.fromkeys(jobs, Outcome.FAILED)
    wait_until(lambda: client.balance("acct") == TOP_UP, timeout=30, message="not refunded")
    assert len(ledger.refund_latencies_ms()) == len(jobs)  # one refund each, no more
    assert ledger.dead.all() == []
    assert audit(ledger.db) == []


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_a_pack_paid_twice_through_the_stripe_route_lands_once_and_the_duplicate_is_refunded(
    web: IngressServer, workers: WorkerProcesses, web_env: dict[str, str], fake: FakeStripe
) -> None:
    workers.env |= web_env
    t0 = int(time.time()) - 300
    sessions = [
        fake.create_paid_checkout("acct_dup", PRICE, AMOUNT, customer="cus_dup", created=t)[0]
        for t in (t0, t0 + 60)
    ]
    for session in sessions:
        text = body(envelope("checkout.session.completed", session))
        assert web.post("stripe", text, stripe_headers(STRIPE, text)).status_code == 200
    workers.start(processes=1, threads=1)  # one thread: applied in the order received
    wait_until(lambda: len(fake.objects("refund")) == 1, timeout=60, message="no refund")
    wait_until(lambda: client.balance("acct_dup") == PACK, timeout=30, message="no grant")
    (refund,) = fake.objects("refund")
    assert (refund["amount"], refund["reason"]) == (AMOUNT, "duplicate")
    assert audit(runtime.ledger().db) == []
