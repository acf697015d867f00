"""One provider delivery is one delivery, whichever door it comes through: the webhook
ingress (with its transport's delivery id) and the pipeline's ``client.report_result`` (with
none) keep it under the same delivery identity, so the second door finds the first door's
row, enqueues nothing, and the count of deliveries is the same whatever the order."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from handlers.ingress import Ingress
from tests.support.ingress import body, standard_headers
from tests.support.ingress_routes import KLING_NEW, OPENAI
from tests.support.settings import configure
from workers import client, metrics, runtime
from workers.demo_payloads import demo_payload
from workers.web import build_ingress


@pytest.fixture
def ingress(refundry_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Ingress]:
    configure(
        monkeypatch,
        refundry_env,
        KLING_WEBHOOK_SECRET=KLING_NEW,
        OPENAI_WEBHOOK_SECRET=OPENAI,
        OPENAI_API_KEY="sk-doors-test",
        FAL_JWKS_URL="off",
    )
    built = build_ingress(runtime.settings())
    yield built
    built.close()


def _redeliveries_answered(route: str) -> float:
    """``refundry_webhooks_total{route, result="redelivery"}`` as ``/metrics`` reads it."""
    found = metrics.registry(runtime.ledger, sla_ms=3_600_000, landing_window_ms=600_000)
    labels = {"route": route, "result": "redelivery"}
    return found.get_sample_value("refundry_webhooks_total", labels) or 0.0


def _sora_failed(video: str) -> dict[str, Any]:
    return {
        "id": f"evt_{video}",
        "object": "event",
        "created_at": int(time.time()),
        "type": "video.failed",
        "data": {"id": video},
    }


CASES: dict[str, tuple[str, str, Callable[[str], dict[str, Any]]]] = {
    # route, secret, payload of one job
    "kling": ("kling", KLING_NEW, lambda job: dict(demo_payload("kling", job, "failed"))),
    "openai": ("openai", OPENAI, _sora_failed),
}


@pytest.mark.parametrize("provider", sorted(CASES))
@pytest.mark.parametrize("ingress_first", [True, False], ids=["ingress-first", "client-first"])
def test_the_same_delivery_through_every_door_is_one_delivery(
    ingress: Ingress, provider: str, ingress_first: bool
) -> None:
    route, secret, payload_of = CASES[provider]
    payload = payload_of(f"job-{provider}-{ingress_first}")
    text = body(payload)

    def post(webhook_id: str) -> str | None:
        accepted = ingress.deliver(
            route, text.encode(), standard_headers(secret, text, webhook_id=webhook_id)
        )
        return accepted.inbox_id

    def report() -> str:
        return client.report_result(provider=provider, payload=json.loads(text))

    ledger = runtime.ledger()
    before = ledger.inbox.redeliveries()
    answered_before = _redeliveries_answered(route)
    if ingress_first:
        ids = [post("msg_1"), post("msg_1"), report()]
    else:
        ids = [report(), post("msg_1"), post("msg_1")]
    assert len(set(ids)) == 1, ids
    assert ledger.inbox.redeliveries() - before == 2
    item = ledger.inbox.get(str(ids[0]))
    assert item is not None and item.provider == provider
    redeliveries_answered = _redeliveries_answered(route) - answered_before
    assert redeliveries_answered == (1 if ingress_first else 2)
