"""The fake Stripe answers as Stripe documents it, checked by Stripe's own library: the official
``stripe`` package parses every kind of object the fake returns into its own class, with the
fields Refundry relies on; its events carry no expandable field and keep the snapshot of their
moment; its lists page; its errors become the library's own exceptions; a replayed idempotency
key says so. Nothing of Refundry runs here: only the fake and the library."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from tests.support.fake_billing import FakeBilling

KEY = "sk_test_refundry_contract"
CLASSES: dict[str, type[stripe.StripeObject]] = {
    "checkout.session": stripe.checkout.Session,
    "payment_intent": stripe.PaymentIntent,
    "charge": stripe.Charge,
    "refund": stripe.Refund,
    "dispute": stripe.Dispute,
    "event": stripe.Event,
    "price": stripe.Price,
    "radar.early_fraud_warning": stripe.radar.EarlyFraudWarning,
    "invoice": stripe.Invoice,
    "invoice_payment": stripe.InvoicePayment,
    "subscription": stripe.Subscription,
}
"""Every ``object`` type the fake (with subscriptions) stores, and the library's class for it."""


@pytest.fixture
def fake(billing: FakeBilling) -> FakeBilling:
    return billing


@pytest.fixture
def client(fake: FakeBilling) -> Iterator[stripe.StripeClient]:
    http = stripe.RequestsClient()
    yield stripe.StripeClient(
        KEY, base_addresses={"api": fake.url}, http_client=http, max_network_retries=0
    )
    http.close()  # type: ignore[no-untyped-call]


def a_bit_of_everything(fake: FakeBilling) -> dict[str, Any]:
    """One of every object: packs paid by card and by a delayed method, refunded in part,
    disputed, warned about, and a subscription's invoice paid and cancelled."""
    fake.add_price("price_pack500", 1900)
    fake.add_price("price_pack100", 500)
    items = [("price_pack500", 2), ("price_pack100", 1)]
    card = fake.checkout(items, client_reference_id="acct_1", customer="cus_1")
    delayed = fake.checkout([("price_pack100", 1)], customer="cus_2", delayed=True)
    fake.settle_delayed(delayed["id"], succeeded=True)
    intent = fake.get(card["payment_intent"])
    fake.refund(intent["id"], amount=1000)
    dispute = fake.dispute(intent["latest_charge"], "lost", amount=500)
    fake.early_fraud_warning(intent["latest_charge"])
    sub = fake.create_subscription("cus_3", created=1_700_000_000)
    fake.pay_invoice(sub["id"], 2900, 1_700_000_100)
    fake.cancel_subscription(sub["id"], at=1_700_000_200)
    return {"card": card, "delayed": delayed, "intent": intent, "dispute": dispute}


def test_the_library_parses_every_kind_of_object_the_fake_holds_into_its_own_class(
    fake: FakeBilling,
) -> None:
    a_bit_of_everything(fake)
    for kind, cls in CLASSES.items():
        stored = fake.objects(kind)
        assert stored, f"the fake holds no {kind}"
        listed = stripe.ListObject.construct_from(
            {"object": "list", "data": stored, "has_more": False, "url": "/v1/x"}, KEY
        )
        assert {type(obj) for obj in listed.data} == {cls}, kind
    for event in stripe.ListObject.construct_from(
        {"object": "list", "data": fake.objects("event"), "has_more": False, "url": "/v1/events"},
        KEY,
    ).data:
        inner = event.data.object
        assert type(inner) is CLASSES[inner.object], event.type
        assert "line_items" not in inner  # an expandable field never rides in an event
        assert event.request is not None and event.api_version


def test_a_checkout_session_as_the_api_returns_it(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    made = a_bit_of_everything(fake)
    card = made["card"]
    session = client.v1.checkout.sessions.retrieve(card["id"])
    assert isinstance(session, stripe.checkout.Session)
    assert (session.mode, session.status, session.payment_status) == ("payment", "complete", "paid")
    assert session.client_reference_id == "acct_1" and session.metadata.to_dict() == {}
    assert isinstance(session.payment_intent, str) and session.amount_total == 2 * 1900 + 500
    assert "line_items" not in session  # not included unless expanded

    expanded = client.v1.checkout.sessions.retrieve(card["id"], {"expand": ["line_items"]})
    assert isinstance(expanded.line_items, stripe.ListObject)
    lines = {(item.price.id, item.quantity) for item in expanded.line_items.data}
    assert lines == {("price_pack500", 2), ("price_pack100", 1)}
    assert all(isinstance(item, stripe.LineItem) for item in expanded.line_items.data)
    assert all(isinstance(item.price, stripe.Price) for item in expanded.line_items.data)

    first = client.v1.checkout.sessions.line_items.list(card["id"], {"limit": 1})
    assert first.has_more and len(first.data) == 1 and first.url.endswith("/line_items")
    every = [(i.price.id, i.quantity) for i in first.auto_paging_iter()]
    assert sorted(every) == sorted(lines)

    (found,) = client.v1.checkout.sessions.list({"payment_intent": card["payment_intent"]}).data
    assert found.id == card["id"]
    assert client.v1.checkout.sessions.list({"payment_intent": "pi_nobody"}).data == []
    pending = client.v1.checkout.sessions.retrieve(made["delayed"]["id"])
    assert pending.payment_status == "paid"  # settled since; its first event said unpaid
    (first_said,) = fake.events("checkout.session.completed", about=made["delayed"]["id"])
    assert first_said["data"]["object"]["payment_status"] == "unpaid"


def test_payment_objects_as_the_api_returns_them(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    made = a_bit_of_everything(fake)
    intent = client.v1.payment_intents.retrieve(made["intent"]["id"])
    assert isinstance(intent, stripe.PaymentIntent)
    assert (intent.status, intent.amount_received, intent.metadata.to_dict()) == (
        "succeeded",
        4300,
        {},
    )
    charge = client.v1.charges.retrieve(str(intent.latest_charge))
    assert isinstance(charge, stripe.Charge)
    assert (charge.amount_refunded, charge.refunded, charge.disputed) == (1000, False, True)
    assert charge.payment_intent == intent.id
    (refund,) = client.v1.refunds.list({"charge": charge.id}).data
    assert isinstance(refund, stripe.Refund) and (refund.amount, refund.status) == (
        1000,
        "succeeded",
    )
    dispute = client.v1.disputes.retrieve(made["dispute"]["id"])
    assert isinstance(dispute, stripe.Dispute)
    assert (dispute.status, dispute.amount, dispute.charge) == ("lost", 500, charge.id)
    (warning,) = client.v1.radar.early_fraud_warnings.list({"charge": charge.id}).data
    assert isinstance(warning, stripe.radar.EarlyFraudWarning) and warning.actionable
    price = client.v1.prices.retrieve("price_pack500")
    assert isinstance(price, stripe.Price) and price.unit_amount == 1900


RETRIEVE: dict[str, Any] = {
    "checkout.session": lambda c, i: c.v1.checkout.sessions.retrieve(i),
    "payment_intent": lambda c, i: c.v1.payment_intents.retrieve(i),
    "charge": lambda c, i: c.v1.charges.retrieve(i),
    "dispute": lambda c, i: c.v1.disputes.retrieve(i),
    "radar.early_fraud_warning": lambda c, i: c.v1.radar.early_fraud_warnings.retrieve(i),
    "refund": lambda c, i: c.v1.refunds.retrieve(i),
    "subscription": lambda c, i: c.v1.subscriptions.retrieve(i),
    "invoice": lambda c, i: c.v1.invoices.retrieve(i),
}
"""Each kind of object a payment event names, retrieved by its id through the library."""


def test_every_object_an_event_names_is_retrieved_by_its_id_and_an_unknown_id_is_missing(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    a_bit_of_everything(fake)
    for kind, retrieve in RETRIEVE.items():
        stored = fake.objects(kind)[0]
        found = retrieve(client, stored["id"])
        assert type(found) is CLASSES[kind] and found.id == stored["id"], kind
        with pytest.raises(stripe.InvalidRequestError) as missing:
            retrieve(client, f"{stored['id'][:3]}nobody")
        error = missing.value.error
        assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
        assert error is not None and error.type == "invalid_request_error", kind
        assert error.doc_url == "https://stripe.com/docs/error-codes/resource-missing"


def test_expanded_fields_come_as_the_library_types_them(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    made = a_bit_of_everything(fake)
    session = client.v1.checkout.sessions.retrieve(
        made["card"]["id"], {"expand": ["line_items", "payment_intent"]}
    )
    assert isinstance(session.payment_intent, stripe.PaymentIntent)
    assert session.payment_intent.id == made["intent"]["id"]
    assert isinstance(session.line_items, stripe.ListObject)
    (invoice,) = fake.objects("invoice")
    paid = client.v1.invoices.retrieve(invoice["id"], {"expand": ["payments"]})
    assert isinstance(paid.payments, stripe.ListObject) and not paid.payments.has_more
    (payment,) = paid.payments.data
    assert isinstance(payment, stripe.InvoicePayment) and payment.status == "paid"
    assert payment.payment.payment_intent == fake.objects("payment_intent")[-1]["id"]
    assert "payments" not in client.v1.invoices.retrieve(invoice["id"])
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.invoices.retrieve(invoice["id"], {"expand": ["currency"]})
    assert refused.value.param == "expand"


def test_a_refund_that_fails_is_failed_and_its_money_counted_back(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    made = a_bit_of_everything(fake)
    (refund,) = fake.objects("refund")
    fake.fail_refund(refund["id"], "lost_or_stolen_card")
    failed = client.v1.refunds.retrieve(refund["id"])
    assert (failed.status, failed.failure_reason) == ("failed", "lost_or_stolen_card")
    charge = client.v1.charges.retrieve(made["intent"]["latest_charge"])
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    (told,) = fake.events("refund.failed", about=refund["id"])
    assert told["data"]["object"]["status"] == "failed"


def test_events_are_snapshots_listed_by_type_and_paged(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    made = a_bit_of_everything(fake)
    charge_id = made["intent"]["latest_charge"]
    (succeeded,) = fake.events("charge.succeeded", about=charge_id)
    assert succeeded["data"]["object"]["amount_refunded"] == 0  # as it was then
    assert fake.get(charge_id)["amount_refunded"] == 1000  # as it is now
    assert succeeded["request"] == {"id": None, "idempotency_key": None}  # automatic
    kinds = ["charge.dispute.*", "checkout.session.async_payment_succeeded"]
    listed = client.v1.events.list({"types": kinds, "limit": 2})
    assert isinstance(listed.data[0], stripe.Event) and listed.has_more
    types = [e.type for e in listed.auto_paging_iter()]
    assert sorted(types) == [
        "charge.dispute.closed",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "checkout.session.async_payment_succeeded",
    ]


def test_errors_reach_the_library_as_its_own_exceptions(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    made = a_bit_of_everything(fake)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.charges.retrieve("ch_nobody")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.payment_intents.retrieve(made["intent"]["id"], {"expand": ["metadata"]})
    assert unknown.value.http_status == 400 and unknown.value.param == "expand"
    with pytest.raises(stripe.InvalidRequestError) as extra:
        client.v1.checkout.sessions.list({"no_such_filter": "x"})  # type: ignore[typeddict-unknown-key]
    assert (extra.value.param, extra.value.code) == ("no_such_filter", "parameter_unknown")
    http = stripe.RequestsClient()
    try:
        publishable = stripe.StripeClient(
            "pk_test_not_a_secret", base_addresses={"api": fake.url}, http_client=http
        )
        with pytest.raises(stripe.AuthenticationError) as refused:
            publishable.v1.charges.retrieve(made["intent"]["latest_charge"])
    finally:
        http.close()  # type: ignore[no-untyped-call]
    assert refused.value.http_status == 401
    fake.fault("/v1/charges/*", 1, status=429, retry_after=2)
    with pytest.raises(stripe.RateLimitError):
        client.v1.charges.retrieve(made["intent"]["latest_charge"])
    fake.fault("/v1/charges/*", 1, status=503)
    with pytest.raises(stripe.APIError) as down:
        client.v1.charges.retrieve(made["intent"]["latest_charge"])
    assert down.value.http_status == 503


def test_an_idempotency_key_replays_the_first_answer_and_refuses_other_parameters(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    made = a_bit_of_everything(fake)
    pi = made["delayed"]["payment_intent"]  # the card payment is under chargeback
    params: Any = {"payment_intent": pi, "amount": 100}
    first = client.v1.refunds.create(params, {"idempotency_key": "k1"})
    again = client.v1.refunds.create(params, {"idempotency_key": "k1"})
    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.refunds.create({"payment_intent": pi, "amount": 101}, {"idempotency_key": "k1"})
    # A parameter refused by validation is not kept: the key can still be used.
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(
            {"payment_intent": pi, "amount": 100, "reason": "whim"},  # type: ignore[typeddict-item]
            {"idempotency_key": "k2"},
        )
    fresh = client.v1.refunds.create(params, {"idempotency_key": "k2"})
    assert fresh.id != first.id
    assert len(fake.objects("refund")) == 3  # the Dashboard's, k1's, k2's


def test_a_500_kept_under_an_idempotency_key_is_replayed_to_every_retry_with_that_key(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    """ "Retries with the same key return the saved response, including 500 errors"
    (https://docs.stripe.com/api/idempotent_requests); a 500 after the effect leaves the
    refund made (Stripe calls a 500 indeterminate); another key is a request of its own."""
    made = a_bit_of_everything(fake)
    params: Any = {"payment_intent": made["delayed"]["payment_intent"], "amount": 100}
    fake.fault("/v1/refunds", 1, method="POST", status=500, saved=True)
    for _ in range(2):
        with pytest.raises(stripe.APIError) as kept:
            client.v1.refunds.create(params, {"idempotency_key": "saved"})
        assert kept.value.http_status == 500
    assert [(c.status, c.replayed) for c in fake.refund_calls] == [(500, False), (500, True)]
    refunds_before = len(fake.objects("refund"))
    fake.fault("/v1/refunds", 1, method="POST", status=500, after_effect=True)
    with pytest.raises(stripe.APIError):
        client.v1.refunds.create(params, {"idempotency_key": "made"})
    assert len(fake.objects("refund")) == refunds_before + 1
    again = client.v1.refunds.create(params, {"idempotency_key": "made"})  # answer not kept
    assert again.last_response is not None
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len(fake.objects("refund")) == refunds_before + 1


def test_a_charge_under_chargeback_cannot_be_refunded_and_an_inquiry_withdraws_nothing(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    """A chargeback makes the charge unrefundable (``is_charge_refundable`` false; Stripe's
    error code ``charge_disputed``); an inquiry withdraws no funds and leaves it refundable;
    a fully refunded charge cannot be disputed (https://docs.stripe.com/disputes)."""
    fake.add_price("price_pack500", 1900)
    charged = [fake.create_paid_checkout(f"acct_{n}", "price_pack500", 1900) for n in range(3)]
    (_, disputed_pi, disputed), (_, asked_pi, asked), (_, refunded_pi, refunded) = charged
    chargeback = fake.dispute(disputed["id"])
    assert chargeback["is_charge_refundable"] is False
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create({"payment_intent": disputed_pi["id"]})
    assert refused.value.code == "charge_disputed"

    inquiry = fake.dispute(asked["id"], "warning_needs_response")
    assert inquiry["is_charge_refundable"] is True
    kinds = [e["type"] for e in fake.events("charge.dispute.*", about=inquiry["id"])]
    assert kinds == ["charge.dispute.created"]
    assert client.v1.refunds.create({"payment_intent": asked_pi["id"]}).status == "succeeded"

    fake.refund(refunded_pi["id"])
    with pytest.raises(ValueError):
        fake.dispute(refunded["id"], "lost")


def test_a_refund_may_stay_pending_then_succeed_or_fail_as_its_events_tell(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    """Refund ``status`` pending → succeeded, or → failed with a failure balance transaction
    and the charge's ``amount_refunded`` lowered (https://docs.stripe.com/refunds); each
    change emits ``refund.updated`` and ``charge.refund.updated`` with the previous values,
    a failure also ``refund.failed``."""
    fake.add_price("price_pack500", 1900)
    _, intent, charge = fake.create_paid_checkout("acct_r", "price_pack500", 1900)
    waiting = fake.refund(intent["id"], 900, pending_reason="insufficient_funds")
    failing = fake.refund(intent["id"], 1000)
    listed = {r.id: r for r in client.v1.refunds.list({"charge": charge["id"]}).data}
    assert (listed[waiting["id"]].status, listed[waiting["id"]].pending_reason) == (
        "pending",
        "insufficient_funds",
    )
    assert client.v1.charges.retrieve(charge["id"]).amount_refunded == 1900

    fake.settle_refund(waiting["id"], succeeded=True)
    fake.settle_refund(failing["id"], succeeded=False)
    done = client.v1.refunds.retrieve(failing["id"])
    assert (done.status, done.failure_reason) == ("failed", "expired_or_canceled_card")
    assert isinstance(done.failure_balance_transaction, str)
    assert client.v1.charges.retrieve(charge["id"]).amount_refunded == 900
    events = stripe.ListObject.construct_from(
        {"object": "list", "data": fake.events("*refund.*"), "has_more": False, "url": "/v1"}, KEY
    ).data
    said = [
        (e.type, e.data.object.id, e.data.previous_attributes.status)
        for e in events
        if "previous_attributes" in e.data
    ]
    assert said == [
        ("refund.updated", waiting["id"], "pending"),
        ("charge.refund.updated", waiting["id"], "pending"),
        ("refund.updated", failing["id"], "succeeded"),
        ("charge.refund.updated", failing["id"], "succeeded"),
    ]
    assert [e["type"] for e in fake.events("refund.failed")] == ["refund.failed"]


def test_sessions_with_nothing_to_pay_and_expired_ones_as_the_library_reads_them(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    """A 100%-off session completes ``no_payment_required`` with no PaymentIntent
    (https://docs.stripe.com/payments/checkout/no-cost-orders); an open one expires with
    ``checkout.session.expired``; both carry the fields of the Session object."""
    fake.add_price("price_pack500", 1900)
    free = fake.checkout([("price_pack500", 2)], client_reference_id="acct_f", percent_off=100)
    opened = fake.open_checkout([("price_pack500", 1)], percent_off=50)
    fake.expire(opened["id"])
    read = client.v1.checkout.sessions.retrieve(free["id"], {"expand": ["line_items"]})
    assert (read.payment_status, read.amount_total, read.payment_intent) == (
        "no_payment_required",
        0,
        None,
    )
    assert read.total_details is not None and read.total_details.amount_discount == 3800
    assert read.line_items is not None and read.line_items.data[0].amount_discount == 3800
    assert read.customer_details is not None and read.customer_details.email
    gone = client.v1.checkout.sessions.retrieve(opened["id"])
    assert (gone.status, gone.amount_total, len(gone.discounts or [])) == ("expired", 950, 1)
    (expired,) = fake.events("checkout.session.expired")
    assert expired["data"]["object"]["status"] == "expired"
    for session in (read, gone):
        for name in ("customer_creation", "payment_method_types", "invoice", "payment_link"):
            assert name in session, name


def test_expandable_references_expand_and_the_event_list_filters_on_delivery(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    """``expand[]`` turns an id field into its object (https://docs.stripe.com/api/expanding_objects);
    ``delivery_success=false`` lists the events not delivered yet; the objects carry the
    fields of their reference pages that a reader of payments looks at."""
    made = a_bit_of_everything(fake)
    session = client.v1.checkout.sessions.retrieve(
        made["card"]["id"], {"expand": ["payment_intent"]}
    )
    assert isinstance(session.payment_intent, stripe.PaymentIntent)
    intent = client.v1.payment_intents.retrieve(made["intent"]["id"], {"expand": ["latest_charge"]})
    assert isinstance(intent.latest_charge, stripe.Charge)
    charge = intent.latest_charge
    assert charge.outcome is not None and charge.outcome.type == "authorized"
    assert isinstance(charge.balance_transaction, str) and charge.billing_details is not None
    dispute = client.v1.disputes.retrieve(made["dispute"]["id"])
    assert dispute.evidence_details.submission_count == 0
    assert [bt.amount for bt in dispute.balance_transactions] == [-500]
    (refund, *_) = client.v1.refunds.list({"charge": charge.id}).data
    assert (
        isinstance(refund.balance_transaction, str) and refund.failure_balance_transaction is None
    )

    every = [e["id"] for e in fake.events()]
    fake.delivered(*every[1:])
    undelivered = client.v1.events.list({"delivery_success": False, "limit": 100}).data
    assert [e.id for e in undelivered] == every[:1]
    assert (
        len(client.v1.events.list({"delivery_success": True, "limit": 100}).data) == len(every) - 1
    )


SESSION_FIELDS = {
    "id", "object", "after_expiration", "allow_promotion_codes", "amount_subtotal",
    "amount_total", "automatic_tax", "billing_address_collection", "cancel_url",
    "client_reference_id", "consent", "consent_collection", "created", "currency",
    "currency_conversion", "custom_fields", "custom_text", "customer", "customer_creation",
    "customer_details", "customer_email", "discounts", "expires_at", "invoice",
    "invoice_creation", "livemode", "locale", "metadata", "mode", "payment_intent",
    "payment_link", "payment_method_collection", "payment_method_options",
    "payment_method_types", "payment_status", "phone_number_collection",
    "presentment_details", "recovered_from", "setup_intent", "shipping_address_collection",
    "shipping_cost", "shipping_options", "status", "submit_type", "subscription",
    "success_url", "total_details", "ui_mode", "url",
}  # fmt: skip
"""The Checkout Session's fields in the API reference's example object
(https://docs.stripe.com/api/checkout/sessions/object), ``line_items`` aside (expandable)."""
LINE_ITEM_FIELDS = {
    "id", "object", "amount_discount", "amount_subtotal", "amount_tax", "amount_total",
    "currency", "description", "metadata", "price", "quantity",
}  # fmt: skip
"""A line item's fields (https://docs.stripe.com/api/checkout/sessions/line_items):
``adjustable_quantity`` is a parameter of the session's creation, never an item's field."""


def test_objects_hold_the_fields_the_api_reference_documents(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    made = a_bit_of_everything(fake)
    session = client.v1.checkout.sessions.retrieve(made["card"]["id"])
    assert set(session.to_dict()) == SESSION_FIELDS
    assert (session.cancel_url, session.customer_email, session.ui_mode) == (None, None, "hosted")
    assert session.automatic_tax.to_dict() == {"enabled": False, "liability": None, "status": None}
    items = client.v1.checkout.sessions.line_items.list(made["card"]["id"]).data
    assert all(set(item.to_dict()) == LINE_ITEM_FIELDS for item in items)
    assert all(isinstance(item, stripe.LineItem) for item in items)
    charge = client.v1.charges.retrieve(made["intent"]["latest_charge"])
    assert isinstance(charge, stripe.Charge)
    assert "refunds" not in charge  # expandable since 2022-11-15: absent unless expanded
    assert charge.amount_refunded == 1000
    expanded = client.v1.charges.retrieve(charge.id, {"expand": ["refunds"]})
    assert isinstance(expanded.refunds, stripe.ListObject)
    assert [(r.amount, type(r)) for r in expanded.refunds.data] == [(1000, stripe.Refund)]


def test_line_items_refuse_an_expansion_they_cannot_make_as_the_session_does(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    made = a_bit_of_everything(fake)
    for call in (
        lambda: client.v1.checkout.sessions.line_items.list(
            made["card"]["id"], {"expand": ["data.no_such_field"]}
        ),
        lambda: client.v1.checkout.sessions.retrieve(
            made["card"]["id"], {"expand": ["no_such_field"]}
        ),
    ):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            call()
        assert refused.value.http_status == 400 and refused.value.param == "expand"
        assert "cannot be expanded" in str(refused.value.user_message)


def test_injected_outages_answer_with_stripes_own_messages_and_types(
    fake: FakeBilling, client: stripe.StripeClient
) -> None:
    made = a_bit_of_everything(fake)
    fake.fault("/v1/charges/*", 1, status=429, retry_after=2)
    with pytest.raises(stripe.RateLimitError) as limited:
        client.v1.charges.retrieve(made["intent"]["latest_charge"])
    error = limited.value.json_body["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "rate_limit")
    assert error["message"].startswith("Request rate limit exceeded")
    fake.fault("/v1/charges/*", 1, status=500)
    with pytest.raises(stripe.APIError) as down:
        client.v1.charges.retrieve(made["intent"]["latest_charge"])
    assert down.value.json_body["error"]["type"] == "api_error"
    assert down.value.json_body["error"]["message"] != "Injected"
