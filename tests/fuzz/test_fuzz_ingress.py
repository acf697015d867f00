"""Fuzzing the webhook ingress through the real Starlette app (``workers.web.create_app``) on
a real ledger and the session's Redis: any route, headers and body are answered with one of
the documented statuses. A 503 (not kept) cannot be right here, with the ledger and Redis
up, and would hide a crash (the app answers 503 to any exception), so it fails the test; a
200 only ever answers a genuine signature made within the five minutes."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook
from starlette.exceptions import StarletteDeprecationWarning

from tests.fuzz.conftest import count
from tests.fuzz.strategies import header_values, mutated, raw_bodies
from tests.support.redis_server import RedisServer
from tests.support.web_app import web_app
from workers.demo_payloads import demo_payload

with warnings.catch_warnings():  # its advice to install httpx2 is about the transport only
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

STANDARD = "whsec_" + "ZnV6ei1pbmdyZXNzLXN0YW5kYXJkLXNlY3JldC0zMmI="
STRIPE = "whsec_fuzz_ingress_stripe_secret"
ENV = {
    "KLING_WEBHOOK_SECRET": STANDARD,
    "REPLICATE_WEBHOOK_SECRET": STANDARD,
    "OPENAI_WEBHOOK_SECRET": STANDARD,
    "OPENAI_API_KEY": "sk-fuzz-openai",
    "STRIPE_WEBHOOK_SECRET": STRIPE,
    "STRIPE_API_KEY": "sk_test_fuzz",
    "FAL_JWKS_URL": "off",
    "REFUNDRY_MAX_BODY_BYTES": "4096",
}
DOCUMENTED = {200, 400, 401, 404, 405, 408, 413, 431}
HEADER_NAMES = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "stripe-signature",
    "content-type",
    "content-length",
    "x-fal-webhook-signature",
    "x-webhook-signature",
    "x-webhook-timestamp",
    "authorization",
]


@pytest.fixture(scope="module")
def app(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("fuzz-ingress")
    with (
        web_app(folder, redis_server, **ENV) as asgi,
        TestClient(asgi, raise_server_exceptions=True) as client,
    ):
        yield client


def _standard(body: bytes, skew_s: int, webhook_id: str) -> dict[str, str]:
    stamp = int(time.time()) + skew_s
    text = body.decode("utf-8", "replace")
    signed = Webhook(STANDARD).sign(webhook_id, datetime.fromtimestamp(stamp, tz=UTC), text)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(stamp), "webhook-signature": signed}


def _stripe(body: bytes, skew_s: int) -> dict[str, str]:
    text = body.decode("utf-8", "replace")
    header = stripe.WebhookSignature.generate_signature_header(
        text, STRIPE, int(time.time()) + skew_s
    )
    return {"stripe-signature": str(header)}


OPENAI_EVENT = {"id": "evt_1", "object": "event", "type": "video.failed", "data": {"id": "v_1"}}
bodies = (
    raw_bodies()
    | st.sampled_from(["kling", "fal"]).map(
        lambda p: json.dumps(demo_payload(p, "job-1", "failed")).encode()
    )
    | mutated(OPENAI_EVENT).map(lambda e: json.dumps(e).encode())
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["stripe", "openai", "kling", "replicate", "fal", "suno", "nope", "kling/"]),
    st.dictionaries(st.sampled_from(HEADER_NAMES), header_values(), max_size=5),
    bodies,
    st.sampled_from(["none", "standard", "stripe"]),
    st.integers(-1000, 1000),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12),
)
def test_any_request_to_the_ingress_gets_a_documented_answer(
    app: TestClient,
    route: str,
    headers: dict[str, str],
    body: bytes,
    signed: str,
    skew_s: int,
    webhook_id: str,
) -> None:
    count("ingress.request")
    if signed == "standard":
        body = body.decode("utf-8", "replace").encode()
        headers = headers | _standard(body, skew_s, webhook_id)
    elif signed == "stripe":
        body = body.decode("utf-8", "replace").encode()
        headers = headers | _stripe(body, skew_s)
    headers.pop("content-length", None)  # the client sets the true one
    raw = {name: value.encode("latin-1") for name, value in headers.items()}  # as sent
    answer = app.post(f"/webhooks/{route}", content=body, headers=raw)
    assert answer.status_code in DOCUMENTED, (answer.status_code, answer.text[:200])
    if answer.status_code == 200:
        assert signed != "none" and abs(skew_s) <= 300
        assert route.rstrip("/") in ("stripe", "openai", "kling", "replicate")


def test_the_fuzzed_app_serves_the_routes(app: TestClient) -> None:
    """The routes under fuzz are on (a forged delivery is 401, not 404)."""
    for route in ("stripe", "openai", "kling", "replicate"):
        assert app.post(f"/webhooks/{route}", content=b"{}").status_code == 401


@pytest.mark.parametrize("kind", [[], {}, ["video.failed"], 1, None])
def test_a_signed_openai_event_whose_type_is_not_text_is_answered_not_crashed(
    app: TestClient, kind: object
) -> None:
    """Found by this fuzzing: ``"type": []`` raised ``TypeError`` (unhashable) in the
    route's filter, answered 503, so OpenAI would have retried it for days."""
    body = json.dumps({"id": "evt_x", "object": "event", "type": kind, "data": {}}).encode()
    answer = app.post("/webhooks/openai", content=body, headers=_standard(body, 0, "msg_t"))
    assert answer.status_code == 200 and answer.json()["kept"] is False
