"""Stripe subscription events: a cancellation is confirmed only once the subscription has ended
(a scheduled one is information), a paid invoice is read in the shape of every API version,
and a missing or mistyped field is refused by name, at report time too."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.stripe import PayloadUnreadable
from providers.stripe_subscriptions import (
    InvoicePaid,
    SubscriptionCancelled,
    parse_subscription_event,
)
from workers import client

Json = dict[str, Any]
EVENT_AT = 1_767_300_000


def event(kind: str, obj: Json, created: int = EVENT_AT) -> Json:
    return {
        "id": "evt_1Sub0001",
        "object": "event",
        "type": kind,
        "created": created,
        "data": {"object": obj},
    }


def subscription(**change: Any) -> Json:
    """A subscription cancelled at once (``customer.subscription.deleted``)."""
    sub = {
        "id": "sub_1Test0001",
        "object": "subscription",
        "customer": "cus_TestUser42",
        "status": "canceled",
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": 1_767_200_000,
        "ended_at": 1_767_200_000,
        "created": 1_764_000_000,
    }
    return {**sub, **change}


def invoice(**change: Any) -> Json:
    """A subscription invoice as API 2026-06-24.dahlia renders it: no ``payment_intent``."""
    inv = {
        "id": "in_1Test0001",
        "object": "invoice",
        "customer": "cus_TestUser42",
        "amount_paid": 1900,
        "currency": "usd",
        "status": "paid",
        "paid_out_of_band": False,
        "created": 1_767_000_000,
        "status_transitions": {"paid_at": 1_767_250_000},
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": "sub_1Test0001", "metadata": {}},
        },
    }
    return {**inv, **change}


def legacy_invoice() -> Json:
    """The same invoice before API 2025-03-31.basil: top-level subscription and intent."""
    inv = invoice(subscription={"id": "sub_1Test0001"}, payment_intent="pi_1Legacy0001")
    del inv["parent"], inv["status_transitions"]
    return inv


def parsed(kind: str, obj: Json) -> SubscriptionCancelled | InvoicePaid | None:
    return parse_subscription_event(event(kind, obj))


# --------------------------------------------------------------------------- cancellations


def test_a_deleted_subscription_is_a_confirmed_cancellation_at_its_end() -> None:
    found = parsed("customer.subscription.deleted", subscription(ended_at=1_767_200_500))
    assert isinstance(found, SubscriptionCancelled)
    assert found.confirmed
    assert (found.subscription_id, found.customer) == ("sub_1Test0001", "cus_TestUser42")
    assert found.cancelled_at == 1_767_200_500  # ended_at, not the time it was asked for
    assert (found.event_id, found.created) == ("evt_1Sub0001", EVENT_AT)


def test_without_ended_at_the_cancellation_time_is_canceled_at() -> None:
    found = parsed("customer.subscription.deleted", subscription(ended_at=None))
    assert isinstance(found, SubscriptionCancelled)
    assert found.cancelled_at == 1_767_200_000


def test_an_update_to_status_canceled_confirms_the_cancellation() -> None:
    found = parsed("customer.subscription.updated", subscription(customer={"id": "cus_X"}))
    assert isinstance(found, SubscriptionCancelled)
    assert found.confirmed and found.customer == "cus_X"


@pytest.mark.parametrize(
    "change",
    [
        {"cancel_at_period_end": True, "cancel_at": 1_769_900_000, "ended_at": None},
        {"cancel_at_period_end": False, "ended_at": None},  # canceled_at set, still active
    ],
)
def test_a_cancellation_only_scheduled_is_information(change: Json) -> None:
    found = parsed("customer.subscription.updated", subscription(status="active", **change))
    assert isinstance(found, SubscriptionCancelled)
    assert not found.confirmed


def test_an_update_that_says_nothing_of_a_cancellation_is_not_ours() -> None:
    quiet = subscription(status="active", canceled_at=None, ended_at=None)
    assert parsed("customer.subscription.updated", quiet) is None


@pytest.mark.parametrize(
    "kind", ["customer.subscription.created", "payment_intent.succeeded", "invoice.created"]
)
def test_other_event_types_are_left_to_parse_event(kind: str) -> None:
    assert parse_subscription_event({"type": kind}) is None


# --------------------------------------------------------------------------- invoices


def test_a_dahlia_invoice_names_its_subscription_under_parent_and_no_intent() -> None:
    found = parsed("invoice.paid", invoice())
    assert isinstance(found, InvoicePaid)
    assert (found.invoice_id, found.subscription_id) == ("in_1Test0001", "sub_1Test0001")
    assert (found.amount_paid, found.currency, found.customer) == (1900, "usd", "cus_TestUser42")
    assert found.paid_at == 1_767_250_000  # status_transitions.paid_at, not created
    assert found.payment_intent is None
    assert not found.paid_out_of_band


def test_a_legacy_invoice_names_both_at_the_top_and_is_paid_when_the_event_was_made() -> None:
    found = parsed("invoice.payment_succeeded", legacy_invoice())
    assert isinstance(found, InvoicePaid)
    assert (found.subscription_id, found.payment_intent) == ("sub_1Test0001", "pi_1Legacy0001")
    assert found.paid_at == EVENT_AT  # never the invoice's own created


def test_an_expanded_payments_list_names_the_paid_intent() -> None:
    payments = {
        "data": [
            {"status": "canceled", "payment": {"type": "payment_intent", "payment_intent": "pi_a"}},
            {
                "status": "paid",
                "payment": {"type": "payment_intent", "payment_intent": {"id": "pi_b"}},
            },
        ]
    }
    found = parsed("invoice.paid", invoice(payments=payments))
    assert isinstance(found, InvoicePaid)
    assert found.payment_intent == "pi_b"


def test_an_invoice_paid_by_two_intents_is_refused_rather_than_guessed() -> None:
    paid = [
        {"status": "paid", "payment": {"type": "payment_intent", "payment_intent": pi}}
        for pi in ("pi_a", "pi_b")
    ]
    with pytest.raises(PayloadUnreadable, match="2 paid payment intents") as caught:
        parsed("invoice.paid", invoice(payments={"data": paid}))
    assert caught.value.fields["field"] == "data.object.payments.data"


def test_an_invoice_of_no_subscription_parses_without_one() -> None:
    found = parsed("invoice.paid", invoice(parent=None))
    assert isinstance(found, InvoicePaid)
    assert found.subscription_id is None


# --------------------------------------------------------------------------- refusals

MISSING = [
    ("customer.subscription.deleted", subscription(), "id"),
    ("customer.subscription.deleted", subscription(), "customer"),
    ("customer.subscription.deleted", subscription(), "status"),
    ("customer.subscription.updated", subscription(), "status"),
    ("invoice.paid", invoice(), "id"),
    ("invoice.paid", invoice(), "customer"),
    ("invoice.paid", invoice(), "amount_paid"),
    ("invoice.payment_succeeded", invoice(), "currency"),
]


@pytest.mark.parametrize(("kind", "obj", "name"), MISSING)
def test_a_missing_field_is_refused_by_name(kind: str, obj: Json, name: str) -> None:
    broken = copy.deepcopy(obj)
    del broken[name]
    with pytest.raises(PayloadUnreadable) as caught:
        parse_subscription_event(event(kind, broken))
    assert caught.value.fields["field"] == f"data.object.{name}"
    assert caught.value.fields["event_id"] == "evt_1Sub0001"
    assert f"data.object.{name}" in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "obj", "field"),
    [
        (
            "customer.subscription.deleted",
            subscription(canceled_at=None, ended_at=None),
            "data.object.canceled_at",
        ),
        (
            "customer.subscription.deleted",
            subscription(status="active"),
            "data.object.status",
        ),
        (
            "customer.subscription.updated",
            subscription(status="active", cancel_at_period_end="yes"),
            "data.object.cancel_at_period_end",
        ),
        ("invoice.paid", invoice(amount_paid="1900"), "data.object.amount_paid"),
        (
            "invoice.paid",
            invoice(parent={"type": "subscription_details", "subscription_details": {}}),
            "data.object.parent.subscription_details.subscription",
        ),
        ("invoice.paid", invoice(payments={"data": "none"}), "data.object.payments.data"),
        ("invoice.paid", invoice(payments={"data": [3]}), "data.object.payments.data.0"),
    ],
)
def test_a_missing_or_mistyped_field_is_refused_by_its_path(
    kind: str, obj: Json, field: str
) -> None:
    with pytest.raises(PayloadUnreadable) as caught:
        parse_subscription_event(event(kind, obj))
    assert caught.value.fields["field"] == field


@pytest.mark.parametrize("name", ["id", "created", "data"])
def test_a_missing_envelope_field_is_refused_by_name(name: str) -> None:
    broken = event("invoice.paid", invoice())
    del broken[name]
    with pytest.raises(PayloadUnreadable) as caught:
        parse_subscription_event(broken)
    assert caught.value.fields["field"] == ("data.object" if name == "data" else name)


def test_report_payment_refuses_an_unreadable_subscription_event_before_recording() -> None:
    """Refused before the ledger or the broker is touched: no environment is needed."""
    broken = event("customer.subscription.deleted", subscription())
    del broken["data"]["object"]["customer"]
    with pytest.raises(PayloadUnreadable) as caught:
        client.report_payment(provider="stripe", event=broken)
    assert caught.value.permanent
    assert caught.value.fields["field"] == "data.object.customer"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
SAMPLES = [
    event("customer.subscription.deleted", subscription()),
    event("customer.subscription.updated", subscription(status="active")),
    event("invoice.paid", invoice()),
    event("invoice.payment_succeeded", legacy_invoice()),
]


@settings(max_examples=300, deadline=None)
@given(sample=st.sampled_from(SAMPLES), data=st.data())
def test_mutated_events_parse_or_are_refused(sample: Json, data: Any) -> None:
    mutant = copy.deepcopy(sample)
    target = data.draw(st.sampled_from([mutant, mutant["data"]["object"]]))
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = data.draw(JSON)
    try:
        found = parse_subscription_event(mutant)
    except PayloadUnreadable as exc:
        assert exc.fields["field"]
    else:
        assert found is None or isinstance(found, SubscriptionCancelled | InvoicePaid)
