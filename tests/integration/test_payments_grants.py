"""Paid credit packs land exactly once: the several Stripe events of one purchase, duplicated
and in any order, grant the pack once; unpaid, pending or failed payments grant nothing; an
event that lacks the account waits for the one that names it. On SQLite and PostgreSQL, with
a real ``StripeAPI`` talking HTTP to the local fake Stripe, and end to end through the real
Redis broker and worker processes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.packs import PackCatalog, PackUnknown, PaymentPolicy
from handlers.payments import apply_payment_event
from ledger import Ledger, audit
from ledger.errors import UnknownProvider
from providers.stripe import PayloadUnreadable, parse_event
from providers.stripe_api import PaymentProviderUnavailable, StripeAPI
from tests.support import stripe_events
from tests.support.commands import WorkerProcesses
from tests.support.fake_stripe import FakeStripe
from tests.support.inbox_waits import wait_processed
from tests.support.stripe_events import envelope, pack_entries, paid_events
from workers import client, runtime

KEY = "sk_test_refundry_packs"
PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
CATALOG = PackCatalog({PRICE: CREDITS})
POLICY = PaymentPolicy()
Json = dict[str, Any]


def apply(ledger: Ledger, event: Json, api: StripeAPI) -> str:
    return apply_payment_event(
        ledger, parse_event(event), catalog=CATALOG, gateway=api, policy=POLICY
    )


def bought(fake: FakeStripe, account: str) -> tuple[Json, Json, Json]:
    return stripe_events.bought(fake, account, PRICE, AMOUNT)


def paying_later(fake: FakeStripe, account: str) -> Json:
    """A pack bought with a delayed payment method: the session is complete, still unpaid."""
    fake.add_price(PRICE, AMOUNT)
    return fake.checkout(
        [(PRICE, 1)], client_reference_id=account, customer=f"cus_{account}", delayed=True
    )


def paid_later(fake: FakeStripe, session: Json) -> tuple[Json, Json]:
    """The delayed payment succeeds: (session, payment_intent) as Stripe holds them then."""
    fake.settle_delayed(session["id"], succeeded=True)
    return fake.get(session["id"]), fake.get(session["payment_intent"])


def grants(url: str, purchase: str) -> list[tuple[str, int, str]]:
    return [e for e in pack_entries(url, purchase) if e[0] == "grant"]


def assert_granted_once(ledger: Ledger, url: str, account: str, purchase: str) -> None:
    assert ledger.balance(account) == CREDITS
    assert grants(url, purchase) == [("grant", CREDITS, account)]
    payment = ledger.payments.get(purchase)
    assert payment is not None and payment.state == "granted"
    assert [d["decision"] for d in ledger.payments.decisions(purchase)] == ["grant"]


@pytest.mark.parametrize("order", [[0, 1, 2, 0, 1, 2], [2, 2, 1, 0, 1, 0], [1, 0, 0, 2, 1, 2]])
def test_every_event_of_one_purchase_twice_in_any_order_grants_the_pack_once(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI, order: list[int]
) -> None:
    session, intent, _ = bought(fake, "acct_once")
    events = paid_events(session, intent)
    said = [apply(ledger, events[i], api) for i in order]
    assert said[0].endswith(": granted")
    assert not any(s.endswith(": granted") for s in said[1:])
    assert_granted_once(ledger, ledger_url, "acct_once", intent["id"])
    assert audit(ledger.db) == []


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[int, list[int]]:
    """(how many pending-session events come first, the paid events as indexes into
    ``paid_events``: any permutation, with duplicates, at least one)."""
    pending = draw(st.integers(0, 3))
    paid = draw(st.lists(st.integers(0, 2), min_size=1, max_size=9))
    return pending, paid


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(delivery=deliveries())
def test_any_interleaving_of_a_purchases_events_grants_exactly_once_at_every_step(
    ledger: Ledger,
    ledger_url: str,
    fake: FakeStripe,
    api: StripeAPI,
    delivery: tuple[int, list[int]],
) -> None:
    pending, paid = delivery
    account = f"acct_{uuid.uuid4().hex[:12]}"  # each example is its own purchase
    waiting = paying_later(fake, account)
    purchase = waiting["payment_intent"]
    for _ in range(pending):
        apply(ledger, envelope("checkout.session.completed", waiting), api)
        assert ledger.balance(account) == 0 and grants(ledger_url, purchase) == []
    events = paid_events(*paid_later(fake, waiting))
    for i in paid:
        apply(ledger, events[i], api)
        assert ledger.balance(account) == CREDITS  # every prefix: granted once, never twice
        assert len(grants(ledger_url, purchase)) == 1
    assert_granted_once(ledger, ledger_url, account, purchase)
    assert audit(ledger.db) == []


def test_a_session_still_awaiting_its_delayed_payment_grants_nothing(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    waiting = paying_later(fake, "acct_pending")
    pi = waiting["payment_intent"]
    for _ in range(2):
        said = apply(ledger, envelope("checkout.session.completed", waiting), api)
        assert "nothing to grant" in said
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "unpaid"
    assert ledger.balance("acct_pending") == 0
    assert pack_entries(ledger_url, pi) == []
    session, _ = paid_later(fake, waiting)
    apply(ledger, envelope("checkout.session.async_payment_succeeded", session), api)
    assert_granted_once(ledger, ledger_url, "acct_pending", pi)


def test_a_failed_delayed_payment_grants_nothing(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    waiting = paying_later(fake, "acct_failed")
    pi = waiting["payment_intent"]
    apply(ledger, envelope("checkout.session.completed", waiting), api)
    fake.settle_delayed(waiting["id"], succeeded=False)
    (failed,) = fake.events("checkout.session.async_payment_failed", about=waiting["id"])
    said = apply(ledger, failed, api)
    assert "failed, nothing to grant" in said
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "failed"
    assert ledger.balance("acct_failed") == 0
    assert pack_entries(ledger_url, pi) == []
    assert ledger.payments.decisions(pi) == []
    assert audit(ledger.db, landing_window_ms=0) == []


def test_a_payment_intent_event_that_comes_first_finds_its_session_and_lands_the_pack_once(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """``payment_intent.succeeded`` names no session and no pack: the PaymentIntent is
    confirmed, then its session found by its id, with its line items, at Stripe."""
    session, intent, _ = bought(fake, "acct_late")
    assert intent["metadata"] == {} and "line_items" not in session  # as Stripe sends them
    said = apply(ledger, envelope("payment_intent.succeeded", intent), api)
    assert said == f"purchase {intent['id']}: granted"
    assert [(r.path, r.params) for r in fake.requests] == [
        (f"/v1/payment_intents/{intent['id']}", {}),
        (
            "/v1/checkout/sessions",
            {"payment_intent": intent["id"], "limit": "1", "expand": ["data.line_items"]},
        ),
    ]
    apply(ledger, envelope("checkout.session.completed", session), api)
    apply(ledger, envelope("payment_intent.succeeded", intent), api)
    assert_granted_once(ledger, ledger_url, "acct_late", intent["id"])
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and payment.session_id == session["id"]


@pytest.mark.parametrize("first", ["checkout.session.completed", "payment_intent.succeeded"])
def test_an_account_named_only_in_the_payment_intents_metadata_is_read_from_there(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI, first: str
) -> None:
    """No ``client_reference_id``, no session metadata: the platform set
    ``payment_intent_data.metadata``. Whichever event comes first, the pack lands there."""
    fake.add_price(PRICE, AMOUNT)
    session = fake.checkout(
        [(PRICE, 1)], customer="cus_pi_meta", intent_metadata={"account_id": "acct_pi_meta"}
    )
    intent = fake.get(session["payment_intent"])
    events = {
        "checkout.session.completed": envelope("checkout.session.completed", session),
        "payment_intent.succeeded": envelope("payment_intent.succeeded", intent),
    }
    assert apply(ledger, events[first], api).endswith(": granted")
    for event in events.values():
        apply(ledger, event, api)
    assert_granted_once(ledger, ledger_url, "acct_pi_meta", intent["id"])


def test_a_payment_intent_that_no_checkout_made_and_names_no_price_is_ignored(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """An invoice's payment, a PaymentIntent created directly: not a pack, nothing recorded."""
    other = fake.pay_without_checkout(4900)
    said = apply(ledger, envelope("payment_intent.succeeded", other), api)
    assert said == "payment_intent.succeeded of no pack purchase: ignored"
    assert ledger.payments.get(other["id"]) is None


def test_a_session_that_is_not_a_one_time_payment_is_not_a_pack(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    session, _, _ = bought(fake, "acct_sub")
    subscription = {**session, "mode": "subscription", "payment_intent": None}
    said = apply(ledger, envelope("checkout.session.completed", subscription), api)
    assert said.endswith(": ignored") and ledger.payments.get(session["id"]) is None
    assert [r.path for r in fake.requests] == []  # nothing fetched for it


def test_line_items_of_several_prices_and_quantities_add_up_to_one_pack(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    small, many = "price_pack100", {f"price_extra{n}": n for n in range(12)}
    catalog = PackCatalog({PRICE: CREDITS, small: 100, **{p: 1 for p in many}})
    fake.add_price(PRICE, AMOUNT)
    fake.add_price(small, 500)
    for price in many:
        fake.add_price(price, 10)
    items = [(PRICE, 2), (small, 1), *((p, 1) for p in many)]
    session = fake.checkout(items, client_reference_id="acct_sum", customer="cus_sum")
    event = parse_event(envelope("checkout.session.completed", session))
    with StripeAPI(KEY, base=fake.url, max_network_retries=0, page_size=5) as paged:
        said = apply_payment_event(ledger, event, catalog=catalog, gateway=paged, policy=POLICY)
    assert said.endswith(": granted")
    expected = 2 * CREDITS + 100 + len(many)
    assert ledger.balance("acct_sum") == expected
    assert grants(ledger_url, session["payment_intent"]) == [("grant", expected, "acct_sum")]
    pages = [r for r in fake.requests if r.path.endswith("/line_items")]
    assert [bool(p.params.get("starting_after")) for p in pages] == [False, True, True]


def test_a_stripe_outage_while_confirming_the_session_is_transient_and_records_nothing(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    session, intent, _ = bought(fake, "acct_outage")
    event = envelope("checkout.session.completed", session)
    for how in ({"status": 503}, {"status": 429, "retry_after": 1}, {"hang_s": 5.0}):
        fake.fault("/v1/checkout/sessions/*", 1, **how)
        with pytest.raises(PaymentProviderUnavailable) as caught:
            apply(ledger, event, api)
        assert not caught.value.permanent  # the worker retries it; never a dead letter
        assert ledger.payments.get(intent["id"]) is None  # no purchase without its pack
        assert ledger.balance("acct_outage") == 0
    assert apply(ledger, event, api).endswith(": granted")
    assert_granted_once(ledger, ledger_url, "acct_outage", intent["id"])


def test_a_price_outside_the_catalog_is_a_permanent_pack_unknown_and_grants_nothing(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    fake.add_price(PRICE, AMOUNT)
    fake.add_price("price_not_sold", 700)
    session = fake.checkout([(PRICE, 1), ("price_not_sold", 1)], client_reference_id="acct_odd")
    intent = fake.get(session["payment_intent"])
    for event in paid_events(session, intent):
        with pytest.raises(PackUnknown) as caught:
            apply(ledger, event, api)
        assert caught.value.permanent
        assert caught.value.fields["price_id"] == "price_not_sold"
    payment = ledger.payments.get(intent["id"])  # kept, without a pack, for reconciliation
    assert payment is not None and (payment.price_id, payment.credits) == (None, None)
    assert ledger.balance("acct_odd") == 0
    assert pack_entries(ledger_url, intent["id"]) == []


# --------------------------------------------------------------------------- through the broker


@pytest.fixture
def stripe_env(stripe_settings: Callable[..., dict[str, str]]) -> dict[str, str]:
    """The Stripe settings, for this process and for the workers it starts."""
    return stripe_settings({PRICE: CREDITS})


def test_a_purchases_events_reported_twice_each_through_the_workers_land_the_pack_once(
    stripe_env: dict[str, str], workers: WorkerProcesses, fake: FakeStripe
) -> None:
    workers.env |= stripe_env
    session, intent, _ = bought(fake, "acct_e2e")
    events = paid_events(session, intent)
    ids = [client.report_payment(provider="stripe", event=e) for e in events + events]
    workers.start(processes=2, threads=4)
    ledger = runtime.ledger()

    wait_processed(ledger, ids, "payment events")
    assert client.balance("acct_e2e") == CREDITS
    assert_granted_once(ledger, stripe_env["DATABASE_URL"], "acct_e2e", intent["id"])
    assert ledger.dead.all() == []
    assert audit(ledger.db) == []


def test_report_payment_refuses_an_unknown_provider_or_an_unreadable_event_recording_nothing(
    stripe_env: dict[str, str], fake: FakeStripe
) -> None:
    session, intent, _ = bought(fake, "acct_refused")
    with pytest.raises(UnknownProvider):
        client.report_payment(provider="paypal", event=envelope("payment_intent.succeeded", intent))
    broken = envelope("checkout.session.completed", session)
    del broken["data"]["object"]["amount_total"]
    with pytest.raises(PayloadUnreadable) as caught:
        client.report_payment(provider="stripe", event=broken)
    assert caught.value.permanent
    assert caught.value.fields["field"] == "data.object.amount_total"
    with pytest.raises(PayloadUnreadable):
        client.report_payment(provider="stripe", event={"type": "payment_intent.succeeded"})
    ledger = runtime.ledger()
    assert ledger.inbox.counts() == {}
    assert ledger.payments.get(intent["id"]) is None
    assert client.balance("acct_refused") == 0


def test_a_paid_purchase_whose_account_nothing_names_waits_unlanded(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """No ``client_reference_id`` and no metadata anywhere: the pack is known, the account is
    not; it is kept paid and unlanded (reconciliation alerts on it), never guessed."""
    fake.add_price(PRICE, AMOUNT)
    session = fake.checkout([(PRICE, 1)], customer="cus_nobody")
    intent = fake.get(session["payment_intent"])
    for event in paid_events(session, intent):
        assert apply(ledger, event, api).endswith(": incomplete")
    payment = ledger.payments.get(intent["id"])
    assert payment is not None
    assert (payment.state, payment.account_id, payment.credits) == ("paid", None, CREDITS)
    assert pack_entries(ledger_url, intent["id"]) == []
