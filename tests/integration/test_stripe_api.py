"""The Stripe client against a real local HTTP fake: a refund keeps Refundry's own idempotency key
through the library's retries and across reruns, so it happens once; errors map to Refundry's;
the reconciliation lists page through ``has_more``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from ledger.errors import ConfigurationError
from providers.stripe import CheckoutSession, EventKind, parse_event, purchase_key
from providers.stripe_api import (
    IdempotencyKeyReused,
    PaymentProviderUnavailable,
    PaymentRejected,
    StripeAPI,
)
from tests.support.fake_stripe import FakeStripe

KEY = "sk_test_refundry"
RETRIES = 2


@pytest.fixture
def api(fake: FakeStripe) -> Iterator[StripeAPI]:
    with StripeAPI(
        KEY, base=fake.url, read_timeout_s=0.5, max_network_retries=RETRIES, page_size=2
    ) as client:
        yield client


@pytest.fixture
def raw(fake: FakeStripe) -> Iterator[stripe.StripeClient]:
    """The bare library, as a caller who passes no idempotency key would use it."""
    http = stripe.RequestsClient()
    yield stripe.StripeClient(KEY, base_addresses={"api": fake.url}, http_client=http)
    http.close()  # type: ignore[no-untyped-call]


def paid(fake: FakeStripe, account: str = "acct_42", created: int | None = None) -> str:
    """A paid credit pack; returns its PaymentIntent id."""
    _, intent, _ = fake.create_paid_checkout(account, "price_pack500", 1900, created=created)
    return str(intent["id"])


def test_a_refund_repeated_with_our_key_is_made_once(fake: FakeStripe, api: StripeAPI) -> None:
    pi = paid(fake)
    first = api.refund_payment(pi, amount=950, reason="duplicate_charge", idempotency_key="dup:1")
    again = api.refund_payment(pi, amount=950, reason="duplicate_charge", idempotency_key="dup:1")
    assert again == first
    assert first["amount"] == 950 and first["reason"] == "duplicate"
    assert first["metadata"] == {"refundry_reason": "duplicate_charge", "refundry_key": "dup:1"}
    assert len(fake.objects("refund")) == 1
    calls = fake.refund_calls
    assert [(c.idempotency_key, c.replayed) for c in calls] == [("dup:1", False), ("dup:1", True)]


def test_a_rerun_in_a_new_process_reuses_the_refund(fake: FakeStripe, api: StripeAPI) -> None:
    pi = paid(fake)
    first = api.refund_payment(pi, amount=None, reason="policy", idempotency_key="r:1")
    with StripeAPI(KEY, base=fake.url) as rerun:
        again = rerun.refund_payment(pi, amount=None, reason="policy", idempotency_key="r:1")
    assert again["id"] == first["id"] and len(fake.objects("refund")) == 1
    assert "reason" not in fake.refund_calls[0].params  # no Stripe reason fits "policy"


def test_the_librarys_own_random_key_would_refund_twice(
    fake: FakeStripe, raw: stripe.StripeClient
) -> None:
    pi = paid(fake)
    for _ in range(2):  # the same job run twice, without a key of ours
        raw.v1.refunds.create({"payment_intent": pi, "amount": 100})
    keys = {call.idempotency_key for call in fake.refund_calls}
    assert len(keys) == 2 and None not in keys
    assert len(fake.objects("refund")) == 2


def test_the_same_key_with_another_amount_is_refused(fake: FakeStripe, api: StripeAPI) -> None:
    pi = paid(fake)
    api.refund_payment(pi, amount=950, reason="duplicate", idempotency_key="dup:2")
    with pytest.raises(IdempotencyKeyReused) as caught:
        api.refund_payment(pi, amount=951, reason="duplicate", idempotency_key="dup:2")
    assert caught.value.permanent
    assert caught.value.fields["type"] == "idempotency_error"
    assert caught.value.fields["idempotency_key"] == "dup:2"
    assert len(fake.objects("refund")) == 1


def test_a_500_is_retried_by_the_library_with_the_same_key(
    fake: FakeStripe, api: StripeAPI
) -> None:
    pi = paid(fake)
    fake.fault("/v1/refunds", 1, status=500)
    refund = api.refund_payment(pi, amount=300, reason="fraudulent", idempotency_key="efw:1")
    assert refund["amount"] == 300 and refund["reason"] == "fraudulent"
    calls = fake.refund_calls
    assert [c.status for c in calls] == [500, 200]
    assert [c.idempotency_key for c in calls] == ["efw:1", "efw:1"]
    assert len(fake.objects("refund")) == 1


def test_500s_beyond_the_retry_budget_are_unavailable(fake: FakeStripe, api: StripeAPI) -> None:
    pi = paid(fake)
    fake.fault("/v1/refunds", None, status=503)
    with pytest.raises(PaymentProviderUnavailable) as caught:
        api.refund_payment(pi, amount=300, reason="duplicate", idempotency_key="k:503")
    assert not caught.value.permanent and caught.value.fields["status"] == 503
    assert [c.idempotency_key for c in fake.refund_calls] == ["k:503"] * (1 + RETRIES)
    assert fake.objects("refund") == []


def test_rate_limiting_is_transient(fake: FakeStripe, api: StripeAPI) -> None:
    pi = paid(fake)
    fake.fault("/v1/refunds", None, status=429, retry_after=1)
    with pytest.raises(PaymentProviderUnavailable) as caught:
        api.refund_payment(pi, amount=300, reason="duplicate", idempotency_key="k:429")
    assert not caught.value.permanent
    assert caught.value.fields["status"] == 429
    assert {c.status for c in fake.refund_calls} == {429}  # stripe-python does not retry 429
    assert fake.objects("refund") == []


def test_a_lost_answer_is_retried_with_the_same_key_and_not_refunded_twice(
    fake: FakeStripe, api: StripeAPI
) -> None:
    pi = paid(fake)
    fake.fault("/v1/refunds", 1, hang_s=5.0, after_effect=True)  # refunded, answer never sent
    refund = api.refund_payment(pi, amount=400, reason="duplicate", idempotency_key="k:lost")
    calls = fake.refund_calls
    assert [(c.status, c.replayed) for c in calls] == [(0, False), (200, True)]
    assert {c.idempotency_key for c in calls} == {"k:lost"}
    assert [r["id"] for r in fake.objects("refund")] == [refund["id"]]


def test_a_stripe_that_never_answers_is_unavailable(fake: FakeStripe, api: StripeAPI) -> None:
    pi = paid(fake)
    fake.fault("/v1/refunds", None, hang_s=5.0)
    with pytest.raises(PaymentProviderUnavailable, match="no answer from Stripe"):
        api.refund_payment(pi, amount=400, reason="duplicate", idempotency_key="k:hang")
    assert len(fake.refund_calls) == 1 + RETRIES


def test_partial_refunds_add_up_and_no_more_than_paid_is_refunded(
    fake: FakeStripe, api: StripeAPI
) -> None:
    pi = paid(fake)
    api.refund_payment(pi, amount=500, reason="duplicate", idempotency_key="p:1")
    with pytest.raises(PaymentRejected) as too_large:
        api.refund_payment(pi, amount=1401, reason="duplicate", idempotency_key="p:2")
    assert too_large.value.fields["code"] == "amount_too_large"
    rest = api.refund_payment(pi, amount=None, reason="duplicate", idempotency_key="p:3")
    assert rest["amount"] == 1400
    charge = api.retrieve_charge(api.retrieve_payment_intent(pi)["latest_charge"])
    assert (charge["amount_refunded"], charge["refunded"]) == (1900, True)
    with pytest.raises(PaymentRejected) as done:
        api.refund_payment(pi, amount=None, reason="duplicate", idempotency_key="p:4")
    assert done.value.fields["code"] == "charge_already_refunded" and done.value.permanent


def test_listing_paid_sessions_pages_through_has_more(
    fake: FakeStripe, api: StripeAPI, raw: stripe.StripeClient
) -> None:
    paid(fake, "acct_old", created=1_000)
    intents = [paid(fake, f"acct_{n}") for n in range(5)]
    raw.v1.checkout.sessions.create(
        {"mode": "payment", "line_items": [{"price": "price_pack500", "quantity": 1}]}
    )  # open, not paid: not listed
    sessions = list(api.list_paid_sessions(created_gte=2_000))
    assert sorted(s["payment_intent"] for s in sessions) == sorted(intents)
    assert {s["line_items"]["data"][0]["price"]["id"] for s in sessions} == {"price_pack500"}
    pages = [r for r in fake.requests if r.method == "GET" and r.path == "/v1/checkout/sessions"]
    assert len(pages) == 3 and [bool(p.params.get("starting_after")) for p in pages] == [
        False,
        True,
        True,
    ]
    assert pages[0].params["created"] == {"gte": "2000"} and pages[0].params["status"] == "complete"
    assert pages[0].params["expand"] == ["data.line_items"]


def test_listing_succeeded_payment_intents_skips_unfinished_ones(
    fake: FakeStripe, api: StripeAPI, raw: stripe.StripeClient
) -> None:
    done = {paid(fake, f"acct_{n}") for n in range(3)}
    raw.v1.payment_intents.create({"amount": 1900, "currency": "usd"})
    assert {pi["id"] for pi in api.list_succeeded_payment_intents(created_gte=0)} == done


def test_listed_events_parse_into_the_same_purchase(fake: FakeStripe, api: StripeAPI) -> None:
    pi = paid(fake)
    api.refund_payment(pi, amount=950, reason="duplicate", idempotency_key="ev:1")
    wanted = ["checkout.session.completed", "payment_intent.succeeded", "charge.refunded"]
    parsed = [parse_event(e) for e in api.list_events(wanted, created_gte=0)]
    assert sorted(e.type for e in parsed) == sorted(wanted)
    assert {purchase_key(e) for e in parsed} == {pi}
    checkout = next(e for e in parsed if e.kind is EventKind.CHECKOUT_COMPLETED)
    assert isinstance(checkout, CheckoutSession) and checkout.paid
    assert (checkout.client_reference_id, checkout.account_id) == ("acct_42", None)
    assert (checkout.line_items, checkout.metadata_price_id) == (None, None)  # as Stripe sends


def test_retrieving_a_session_expands_its_line_items(fake: FakeStripe, api: StripeAPI) -> None:
    session, _, _ = fake.create_paid_checkout("acct_7", "price_pack100", 500)
    found = api.retrieve_checkout_session(session["id"])
    assert found["line_items"]["data"][0]["price"]["id"] == "price_pack100"
    with pytest.raises(PaymentRejected) as missing:
        api.retrieve_payment_intent("pi_nope")
    assert missing.value.fields["status"] == 404
    assert missing.value.fields["code"] == "resource_missing"


def test_an_unreachable_stripe_is_unavailable() -> None:
    gone = FakeStripe().start()
    gone.close()  # nothing listens on its port any more
    api = StripeAPI(KEY, base=gone.url, max_network_retries=0)
    with api, pytest.raises(PaymentProviderUnavailable):
        api.retrieve_charge("ch_1")


@pytest.mark.parametrize("base", ["https://api.stripe.com/v1", "ftp://x", "", "api.stripe.com"])
def test_a_base_url_it_cannot_use_is_a_configuration_error(base: str) -> None:
    with pytest.raises(ConfigurationError):
        StripeAPI(KEY, base=base)


def test_no_api_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        StripeAPI("")
