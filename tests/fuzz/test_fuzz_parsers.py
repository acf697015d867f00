"""Fuzzing every parser a provider's or Stripe's bytes reach: whatever arrives, each answers
or refuses with an error of Refundry's own tree (``ledger.errors``), never another exception
and never a hang (hypothesis's deadline bounds each input).

The inputs: any JSON, mutants of each provider's real shapes and of Stripe's events, raw
bytes, and signature headers of every form. ``REFUNDRY_FUZZ_EXAMPLES`` raises the number of
inputs per test for a long run (``scripts/fuzz.sh``).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import stripe
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from handlers.webhook_verification import StandardWebhooks, verify_stripe
from ledger.errors import RefundryError
from providers.base import OPERATIONS, Classification
from providers.deliveries import delivery_key
from providers.registry import PROVIDER_NAMES, classify
from providers.stripe import parse_event
from providers.stripe_subscriptions import parse_subscription_event
from tests.fuzz.conftest import count
from tests.fuzz.strategies import header_values, json_objects, json_values, mutated, raw_bodies
from tests.support.provider_shapes import SKELETONS
from workers import validation

PROVIDERS = st.sampled_from(PROVIDER_NAMES)
MAYBE_OPERATION = st.none() | st.sampled_from(OPERATIONS)
STANDARD_SECRET = "whsec_" + "ZnV6ei1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQtMzI="
STRIPE_SECRET = "whsec_fuzz_stripe_endpoint_secret"


@st.composite
def payloads(draw: st.DrawFn) -> tuple[str, Any]:
    """(provider, payload): a mutant of one of its real shapes, or any JSON object."""
    provider = draw(PROVIDERS)
    shapes = SKELETONS.get(provider, [])
    if shapes and draw(st.booleans()):
        return provider, draw(mutated(draw(st.sampled_from(shapes))))
    return provider, draw(json_objects())


@given(payloads(), MAYBE_OPERATION)
def test_a_provider_payload_is_classified_or_refused_with_refundrys_error(
    case: tuple[str, Any], operation: str | None
) -> None:
    count("providers.classify")
    provider, payload = case
    try:
        result = classify(provider, payload, operation)
    except RefundryError:
        return
    assert isinstance(result, Classification)


@given(payloads(), MAYBE_OPERATION, st.none() | st.text(max_size=20))
def test_a_delivery_identity_is_found_or_refused_with_refundrys_error(
    case: tuple[str, Any], operation: str | None, webhook_id: str | None
) -> None:
    count("providers.delivery_key")
    provider, payload = case
    try:
        key = delivery_key(provider, payload, operation=operation, webhook_id=webhook_id)
    except RefundryError:
        return
    assert key is None or isinstance(key, str)


@given(st.one_of(json_values(), st.binary(max_size=64), st.sets(st.integers(), max_size=3)))
def test_the_payload_rule_takes_a_json_object_or_refuses_with_refundrys_error(value: Any) -> None:
    count("validation.payload")
    try:
        checked = validation.payload(value)
    except RefundryError:
        return
    assert isinstance(checked, dict)


@given(raw_bodies())
def test_a_json_document_is_read_or_refused_with_refundrys_error(raw: bytes) -> None:
    count("validation.json_document")
    try:
        document = validation.json_document(raw)
    except RefundryError:
        return
    assert isinstance(document, dict)


def _stripe_event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "evt_fuzz",
        "object": "event",
        "type": kind,
        "created": 1_780_000_000,
        "livemode": False,
        "data": {"object": obj},
    }


_SESSION = {
    "id": "cs_test_fuzz",
    "object": "checkout.session",
    "mode": "payment",
    "payment_status": "paid",
    "status": "complete",
    "amount_total": 1900,
    "currency": "usd",
    "client_reference_id": "acct-1",
    "customer": "cus_1",
    "payment_intent": "pi_1",
    "metadata": {},
    "created": 1_780_000_000,
}
_CHARGE = {
    "id": "ch_1",
    "object": "charge",
    "payment_intent": "pi_1",
    "amount": 1900,
    "amount_refunded": 1900,
    "refunded": True,
    "currency": "usd",
    "created": 1_780_000_000,
    "refunds": {"object": "list", "data": [{"id": "re_1", "amount": 1900, "status": "succeeded"}]},
}
_DISPUTE = {
    "id": "dp_1",
    "object": "dispute",
    "charge": "ch_1",
    "payment_intent": "pi_1",
    "amount": 1900,
    "status": "lost",
    "created": 1_780_000_000,
}
_SUBSCRIPTION = {
    "id": "sub_1",
    "object": "subscription",
    "customer": "cus_1",
    "status": "canceled",
    "canceled_at": 1_780_000_000,
    "cancel_at_period_end": False,
    "metadata": {},
}
STRIPE_SHAPES = [
    _stripe_event("checkout.session.completed", _SESSION),
    _stripe_event("checkout.session.async_payment_succeeded", _SESSION),
    _stripe_event("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"}),
    _stripe_event("charge.refunded", _CHARGE),
    _stripe_event("charge.dispute.closed", _DISPUTE),
    _stripe_event("refund.updated", {"id": "re_1", "object": "refund", "charge": "ch_1"}),
    _stripe_event("customer.subscription.deleted", _SUBSCRIPTION),
    _stripe_event("invoice.paid", {"id": "in_1", "object": "invoice", "subscription": "sub_1"}),
    _stripe_event("radar.early_fraud_warning.created", {"id": "issfr_1", "charge": "ch_1"}),
]


stripe_events = st.one_of(
    st.sampled_from(STRIPE_SHAPES).flatmap(mutated), json_objects(), json_values()
)


@given(stripe_events)
def test_a_stripe_event_is_parsed_or_refused_with_refundrys_error(event: Any) -> None:
    count("stripe.parse_event")
    with contextlib.suppress(RefundryError):
        parse_event(event)
    with contextlib.suppress(RefundryError):
        parse_subscription_event(event)


@given(raw_bodies(), st.none() | header_values(), st.booleans(), st.integers(-(10**6), 10**6))
def test_a_stripe_webhook_is_verified_or_refused_with_refundrys_error(
    body: bytes, header: str | None, genuine: bool, skew_s: int
) -> None:
    """Any header, or a genuine signature made ``skew_s`` from now over any body."""
    count("stripe.verify")
    if genuine:
        text = body.decode("utf-8", "replace")
        body = text.encode()
        header = str(
            stripe.WebhookSignature.generate_signature_header(
                text, STRIPE_SECRET, int(time.time()) + skew_s
            )
        )
    try:
        event = verify_stripe(body, header, [STRIPE_SECRET])
    except RefundryError:
        return
    assert genuine and abs(skew_s) <= 300 and isinstance(event, dict)


@given(
    raw_bodies(),
    st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]),
        header_values(),
    ),
    st.booleans(),
    st.integers(-(10**6), 10**6),
)
def test_a_standard_webhook_is_verified_or_refused_with_refundrys_error(
    body: bytes, headers: dict[str, str], genuine: bool, skew_s: int
) -> None:
    """Kling's, OpenAI's and Replicate's scheme: any headers, or genuine ones ``skew_s`` off."""
    count("standard_webhooks.verify")
    hooks = StandardWebhooks([STANDARD_SECRET], variable="KLING_WEBHOOK_SECRET")
    if genuine:
        text = body.decode("utf-8", "replace")
        body = text.encode()
        stamp = int(time.time()) + skew_s
        from datetime import UTC, datetime

        signed = Webhook(STANDARD_SECRET).sign("msg_1", datetime.fromtimestamp(stamp, tz=UTC), text)
        headers = {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(stamp),
            "webhook-signature": signed,
        }
    try:
        webhook_id, event = hooks.verify(body, headers)
    except RefundryError:
        return
    assert genuine and abs(skew_s) <= 300
    assert webhook_id == "msg_1" and isinstance(event, dict)
    assert event == json.loads(body)
