"""Paid credit packs land exactly once: the several Stripe events of one purchase, duplicated
and in any order, grant the pack once; unpaid, pending or failed payments grant nothing; an
event that lacks the account waits for the one that names it. On SQLite and PostgreSQL, with
a real ``StripeAPI`` talking HTTP to the local fake Stripe, and end to end through the real
Redis broker and worker processes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.packs import PackCatalog, PackUnknown, PaymentPolicy
from handlers.payments import apply_payment_event
from ledger import Ledger, audit
from ledger.errors import UnknownProvider
from providers.stripe import PayloadUnreadable, parse_event
from providers.stripe_api import StripeAPI
from tests.integration.conftest import WorkerProcesses
from tests.support.fake_stripe import FakeStripe
from tests.support.stripe_events import envelope, pack_entries, unpaid
from tests.support.waiting import wait_until
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
    """A paid pack bought by its own customer (so no two purchases look like duplicates)."""
    return fake.create_paid_checkout(account, PRICE, AMOUNT, customer=f"cus_{account}")


def paid_events(session: Json, intent: Json) -> list[Json]:
    return [
        envelope("checkout.session.completed", session),
        envelope("checkout.session.async_payment_succeeded", session),
        envelope("payment_intent.succeeded", intent),
    ]


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
    session, intent, _ = bought(fake, account)
    purchase = intent["id"]
    for _ in range(pending):
        apply(ledger, envelope("checkout.session.completed", unpaid(session)), api)
        assert ledger.balance(account) == 0 and grants(ledger_url, purchase) == []
    events = paid_events(session, intent)
    for i in paid:
        apply(ledger, events[i], api)
        assert ledger.balance(account) == CREDITS  # every prefix: granted once, never twice
        assert len(grants(ledger_url, purchase)) == 1
    assert_granted_once(ledger, ledger_url, account, purchase)
    assert audit(ledger.db) == []


def test_a_session_still_awaiting_its_delayed_payment_grants_nothing(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    session, intent, _ = bought(fake, "acct_pending")
    for _ in range(2):
        said = apply(ledger, envelope("checkout.session.completed", unpaid(session)), api)
        assert "nothing to grant" in said
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and payment.state == "unpaid"
    assert ledger.balance("acct_pending") == 0
    assert pack_entries(ledger_url, intent["id"]) == []
    apply(ledger, envelope("checkout.session.async_payment_succeeded", session), api)
    assert_granted_once(ledger, ledger_url, "acct_pending", intent["id"])


def test_a_failed_delayed_payment_grants_nothing(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    session, intent, _ = bought(fake, "acct_failed")
    apply(ledger, envelope("checkout.session.completed", unpaid(session)), api)
    said = apply(ledger, envelope("checkout.session.async_payment_failed", unpaid(session)), api)
    assert "failed, nothing to grant" in said
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and payment.state == "failed"
    assert ledger.balance("acct_failed") == 0
    assert pack_entries(ledger_url, intent["id"]) == []
    assert ledger.payments.decisions(intent["id"]) == []
    assert audit(ledger.db, landing_window_ms=0) == []


def test_a_payment_event_naming_no_pack_waits_for_the_session_that_names_it(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    session, intent, _ = bought(fake, "acct_late")
    bare_intent = {**intent, "metadata": {}}  # set up without payment_intent_data.metadata
    said = apply(ledger, envelope("payment_intent.succeeded", bare_intent), api)
    # Naming no pack and no known purchase, it could be any payment: nothing is recorded.
    assert said.endswith(": ignored")
    assert ledger.payments.get(intent["id"]) is None
    assert ledger.balance("acct_late") == 0 and pack_entries(ledger_url, intent["id"]) == []

    # The session names the account only through client_reference_id.
    named = {**session, "metadata": {"price_id": PRICE}}
    assert apply(ledger, envelope("checkout.session.completed", named), api).endswith(": granted")
    apply(ledger, envelope("payment_intent.succeeded", bare_intent), api)
    apply(ledger, envelope("checkout.session.completed", named), api)
    assert_granted_once(ledger, ledger_url, "acct_late", intent["id"])


def test_a_price_outside_the_catalog_is_a_permanent_pack_unknown_and_records_nothing(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    session, intent, _ = fake.create_paid_checkout("acct_odd", "price_not_sold", 700)
    for event in paid_events(session, intent):
        with pytest.raises(PackUnknown) as caught:
            apply(ledger, event, api)
        assert caught.value.permanent
        assert caught.value.fields["price_id"] == "price_not_sold"
    assert ledger.payments.get(intent["id"]) is None
    assert ledger.balance("acct_odd") == 0
    assert pack_entries(ledger_url, intent["id"]) == []


# --------------------------------------------------------------------------- through the broker


@pytest.fixture
def stripe_env(
    fake: FakeStripe, refundry_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The Stripe settings, for this process and for the workers it starts."""
    extra = {
        "STRIPE_API_KEY": KEY,
        "STRIPE_API_BASE": fake.url,
        "REFUNDRY_PACKS": f'{{"{PRICE}": {CREDITS}}}',
    }
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    return refundry_env | extra


def test_a_purchases_events_reported_twice_each_through_the_workers_land_the_pack_once(
    stripe_env: dict[str, str], workers: WorkerProcesses, fake: FakeStripe
) -> None:
    workers.env |= stripe_env
    session, intent, _ = bought(fake, "acct_e2e")
    events = paid_events(session, intent)
    ids = [client.report_payment(provider="stripe", event=e) for e in events + events]
    workers.start(processes=2, threads=4)
    ledger = runtime.ledger()

    def all_processed() -> bool:
        items = [ledger.inbox.get(i) for i in ids]
        return all(item is not None and item.state == "processed" for item in items)

    wait_until(all_processed, timeout=60, message="payment events not all processed")
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


def test_a_payment_naming_the_pack_but_not_the_account_waits_then_lands_once(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    session, intent, _ = bought(fake, "acct_wait")
    no_account = {**intent, "metadata": {"price_id": PRICE}}
    said = apply(ledger, envelope("payment_intent.succeeded", no_account), api)
    assert said.endswith(": incomplete")
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and (payment.state, payment.account_id) == ("paid", None)
    assert ledger.balance("acct_wait") == 0
    named = {**session, "metadata": {"price_id": PRICE}}
    assert apply(ledger, envelope("checkout.session.completed", named), api).endswith(": granted")
    apply(ledger, envelope("payment_intent.succeeded", no_account), api)
    assert_granted_once(ledger, ledger_url, "acct_wait", intent["id"])
