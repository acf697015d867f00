"""Stripe events: every event type Refundry acts on parses into its typed view, refusing a
missing or mistyped field by name (objects following research/payments.md §7)."""

from __future__ import annotations

import copy
import json
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.stripe import (
    ChargeRefunded,
    CheckoutSession,
    DisputeClosed,
    EarlyFraudWarning,
    EventKind,
    LineItem,
    PayloadUnreadable,
    PaymentEvent,
    PaymentSucceeded,
    RefundUpdated,
    parse_event,
    purchase_key,
)

E = TypeVar("E", bound=PaymentEvent)


OBJECTS: dict[str, dict[str, Any]] = json.loads(
    """{
"session": {"id": "cs_test_a1PackSession0001", "object": "checkout.session", "mode": "payment",
  "status": "complete", "payment_status": "paid", "amount_subtotal": 1900, "amount_total": 1900,
  "currency": "usd", "client_reference_id": "user_42", "customer": "cus_TestUser42",
  "payment_intent": "pi_3PackIntent0001", "created": 1767225600,
  "metadata": {"account_id": "acct_42", "price_id": "price_pack500"}},
"intent": {"id": "pi_3PackIntent0001", "object": "payment_intent", "amount": 1900,
  "amount_received": 1900, "currency": "usd", "customer": "cus_TestUser42",
  "latest_charge": "ch_3PackCharge0001", "status": "succeeded",
  "metadata": {"account_id": "acct_42", "price_id": "price_pack500"}},
"charge": {"id": "ch_3PackCharge0001", "object": "charge", "amount": 1900, "amount_refunded": 950,
  "refunded": false, "currency": "usd", "payment_intent": "pi_3PackIntent0001"},
"dispute": {"id": "dp_1DisputeTest0001", "object": "dispute", "amount": 1900, "status": "lost",
  "charge": "ch_3PackCharge0001", "payment_intent": "pi_3PackIntent0001", "reason": "fraudulent"},
"warning": {"id": "issfr_1Warning0001", "object": "radar.early_fraud_warning", "actionable": true,
  "charge": "ch_3PackCharge0001", "payment_intent": "pi_3PackIntent0001",
  "fraud_type": "made_with_stolen_card"},
"refund": {"id": "re_3Refund0001", "object": "refund", "amount": 950, "status": "failed",
  "charge": "ch_3PackCharge0001", "payment_intent": "pi_3PackIntent0001",
  "failure_reason": "expired_or_canceled_card"}
}"""
)
"""``data.object`` of each event type, following research/payments.md §7."""
CHARGE, DISPUTE, WARNING, REFUND = (OBJECTS[k] for k in ("charge", "dispute", "warning", "refund"))


def event(kind: str, obj: dict[str, Any], event_id: str = "evt_1Test0001") -> dict[str, Any]:
    """An event envelope as Stripe sends it."""
    envelope: dict[str, Any] = {"id": event_id, "object": "event", "type": kind}
    envelope |= {"created": 1767225660, "livemode": False, "api_version": "2026-06-24.dahlia"}
    return envelope | {"pending_webhooks": 1, "data": {"object": copy.deepcopy(obj)}}


def session(**changes: Any) -> dict[str, Any]:
    return OBJECTS["session"] | changes


def intent(**changes: Any) -> dict[str, Any]:
    return OBJECTS["intent"] | changes


def parsed_as(kind: str, obj: dict[str, Any], cls: type[E]) -> E:
    parsed = parse_event(event(kind, obj))
    assert isinstance(parsed, cls)
    assert (parsed.event_id, parsed.type, parsed.created) == ("evt_1Test0001", kind, 1767225660)
    assert parsed.kind is EventKind(kind)
    return parsed


def has(parsed: PaymentEvent, **expected: Any) -> None:
    assert {name: getattr(parsed, name) for name in expected} == expected


@pytest.mark.parametrize("kind", [k for k in EventKind if k.startswith("checkout.session.")])
def test_checkout_session_events_carry_the_purchase(kind: str) -> None:
    parsed = parsed_as(kind, session(), CheckoutSession)
    has(parsed, session_id="cs_test_a1PackSession0001", payment_status="paid", currency="usd")
    has(parsed, amount_total=1900, payment_intent="pi_3PackIntent0001", customer="cus_TestUser42")
    has(parsed, client_reference_id="user_42", account_id="acct_42", mode="payment")
    has(parsed, metadata_price_id="price_pack500", line_items=None)  # events never carry them
    assert parsed.paid is (kind != "checkout.session.async_payment_failed")
    delayed = parse_event(event(kind, session(payment_status="unpaid")))  # not paid yet
    assert isinstance(delayed, CheckoutSession) and not delayed.paid
    assert purchase_key(parsed) == "pi_3PackIntent0001"


def test_expanded_line_items_are_read_with_their_quantities_and_expanded_ids_too() -> None:
    items = {
        "object": "list",
        "has_more": False,
        "data": [
            {"id": "li_1", "object": "item", "price": {"id": "price_a"}, "quantity": 2},
            {"id": "li_2", "object": "item", "price": "price_b", "quantity": 1},
        ],
    }
    obj = session(line_items=items, payment_intent={"id": "pi_expanded"}, customer=None)
    parsed = parsed_as("checkout.session.completed", obj, CheckoutSession)
    has(parsed, payment_intent="pi_expanded", customer=None)
    assert parsed.line_items == (LineItem("price_a", 2), LineItem("price_b", 1))


def test_an_expanded_first_page_of_line_items_counts_as_not_carried() -> None:
    first_page = {"object": "list", "has_more": True, "data": []}
    parsed = parsed_as(
        "checkout.session.completed", session(line_items=first_page), CheckoutSession
    )
    assert parsed.line_items is None  # the full list must be fetched


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"id": "li_1", "price": None, "quantity": 1}, "data.object.line_items.data.0.price"),
        (
            {"id": "li_1", "price": {"id": "p"}, "quantity": 0},
            "data.object.line_items.data.0.quantity",
        ),
        ({"id": "li_1", "price": {"id": "p"}}, "data.object.line_items.data.0.quantity"),
        ("li_1", "data.object.line_items.data.0"),
    ],
    ids=["no-price", "zero-quantity", "no-quantity", "not-an-object"],
)
def test_a_line_item_without_a_price_or_a_quantity_is_refused_naming_it(
    item: object, field: str
) -> None:
    obj = session(line_items={"object": "list", "has_more": False, "data": [item]})
    with pytest.raises(PayloadUnreadable) as caught:
        parse_event(event("checkout.session.completed", obj))
    assert caught.value.fields["field"] == field


def test_without_line_items_or_metadata_there_is_no_price_nor_account() -> None:
    parsed = parsed_as("checkout.session.completed", session(metadata={}), CheckoutSession)
    has(parsed, metadata_price_id=None, account_id=None, line_items=None)


def test_one_payment_has_one_purchase_key_whichever_event_brings_it() -> None:
    from_checkout = parse_event(event("checkout.session.completed", session(), "evt_a"))
    from_intent = parse_event(event("payment_intent.succeeded", intent(), "evt_b"))
    assert purchase_key(from_checkout) == purchase_key(from_intent) == "pi_3PackIntent0001"
    free = session(payment_intent=None, payment_status="no_payment_required")
    assert purchase_key(parse_event(event("checkout.session.completed", free))) == free["id"]


def test_payment_intent_succeeded() -> None:
    parsed = parsed_as("payment_intent.succeeded", intent(), PaymentSucceeded)
    has(parsed, payment_intent="pi_3PackIntent0001", amount_received=1900, currency="usd")
    has(parsed, account_id="acct_42", metadata_price_id="price_pack500", customer="cus_TestUser42")
    has(parsed, latest_charge="ch_3PackCharge0001")


def test_charge_refunded_carries_the_cumulative_amount() -> None:
    parsed = parsed_as("charge.refunded", CHARGE, ChargeRefunded)
    has(parsed, charge_id="ch_3PackCharge0001", amount=1900, amount_refunded=950, refunded=False)
    assert purchase_key(parsed) == "pi_3PackIntent0001"


@pytest.mark.parametrize("status", ["lost", "won"])
def test_dispute_closed(status: str) -> None:
    parsed = parsed_as("charge.dispute.closed", DISPUTE | {"status": status}, DisputeClosed)
    has(parsed, dispute_id="dp_1DisputeTest0001", charge="ch_3PackCharge0001", status=status)
    has(parsed, amount=1900, payment_intent="pi_3PackIntent0001")
    assert purchase_key(parsed) == "pi_3PackIntent0001"


def test_early_fraud_warning() -> None:
    parsed = parsed_as("radar.early_fraud_warning.created", WARNING, EarlyFraudWarning)
    has(parsed, warning_id="issfr_1Warning0001", charge="ch_3PackCharge0001")
    has(parsed, payment_intent="pi_3PackIntent0001")


@pytest.mark.parametrize("kind", ["refund.updated", "refund.failed"])
def test_refund_updates(kind: str) -> None:
    parsed = parsed_as(kind, REFUND, RefundUpdated)
    has(parsed, refund_id="re_3Refund0001", status="failed", amount=950, charge=CHARGE["id"])
    has(parsed, failure_reason="expired_or_canceled_card", payment_intent="pi_3PackIntent0001")


@pytest.mark.parametrize("kind", ["customer.created", "charge.dispute.created", "ignored"])
def test_an_event_refundry_does_not_act_on_is_ignored_not_refused(kind: str) -> None:
    parsed = parse_event({"id": "evt_x", "type": kind, "created": 1, "data": {"object": []}})
    assert type(parsed) is PaymentEvent
    assert parsed.kind is EventKind.IGNORED
    assert purchase_key(parsed) is None


MISSING = [
    ("checkout.session.completed", session(), "payment_status"),
    ("checkout.session.completed", session(), "amount_total"),
    ("checkout.session.async_payment_succeeded", session(), "id"),
    ("payment_intent.succeeded", intent(), "amount_received"),
    ("payment_intent.succeeded", intent(), "currency"),
    ("charge.refunded", CHARGE, "amount_refunded"),
    ("charge.refunded", CHARGE, "refunded"),
    ("charge.dispute.closed", DISPUTE, "charge"),
    ("charge.dispute.closed", DISPUTE, "status"),
    ("radar.early_fraud_warning.created", WARNING, "charge"),
    ("refund.failed", REFUND, "status"),
]


@pytest.mark.parametrize(("kind", "obj", "name"), MISSING)
def test_a_missing_field_is_refused_by_name(kind: str, obj: dict[str, Any], name: str) -> None:
    broken = copy.deepcopy(obj)
    del broken[name]
    with pytest.raises(PayloadUnreadable) as caught:
        parse_event(event(kind, broken))
    assert caught.value.fields["field"] == f"data.object.{name}"
    assert caught.value.fields["event_id"] == "evt_1Test0001"
    assert f"data.object.{name}" in str(caught.value)


@pytest.mark.parametrize("name", ["id", "type", "created", "data"])
def test_a_missing_envelope_field_is_refused_by_name(name: str) -> None:
    broken = event("charge.refunded", CHARGE)
    del broken[name]
    with pytest.raises(PayloadUnreadable) as caught:
        parse_event(broken)
    assert caught.value.fields["field"] == ("data.object" if name == "data" else name)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount_total": "1900"}, "data.object.amount_total"),
        ({"amount_total": True}, "data.object.amount_total"),
        ({"payment_status": 1}, "data.object.payment_status"),
        ({"metadata": {"account_id": 42}}, "data.object.metadata.account_id"),
        ({"payment_intent": {"object": "payment_intent"}}, "data.object.payment_intent.id"),
        ({"line_items": {"data": "none"}}, "data.object.line_items.data"),
        ({"line_items": {"data": [7]}}, "data.object.line_items.data.0"),
    ],
)
def test_a_mistyped_field_is_refused_by_name(change: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadUnreadable) as caught:
        parse_event(event("checkout.session.completed", session(**change)))
    assert caught.value.fields["field"] == field


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
SAMPLES = [
    event("checkout.session.completed", session()),
    event("payment_intent.succeeded", intent()),
    event("charge.refunded", CHARGE),
    event("charge.dispute.closed", DISPUTE),
    event("radar.early_fraud_warning.created", WARNING),
    event("refund.failed", REFUND),
]


@settings(max_examples=400, deadline=None)
@given(sample=st.sampled_from(SAMPLES), data=st.data())
def test_mutated_events_parse_or_are_refused(sample: dict[str, Any], data: Any) -> None:
    mutant = copy.deepcopy(sample)
    target = data.draw(st.sampled_from([mutant, mutant["data"]["object"]]))
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = data.draw(JSON)
    try:
        parsed = parse_event(mutant)
    except PayloadUnreadable as exc:
        assert exc.fields["field"]
    else:
        assert isinstance(parsed, PaymentEvent)
        purchase_key(parsed)
