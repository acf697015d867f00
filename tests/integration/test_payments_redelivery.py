"""No effect on money may depend on how many times, or when, a payment event arrives. Each test
is named for a kind of fault: an effect keyed by a running total instead of by what caused it;
a state change that is not a compare-and-set on the state it was decided from; an inbox row
marked processed outside its effect's transaction. On SQLite and PostgreSQL, Stripe being the
local fake over HTTP."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from handlers.packs import PackCatalog, PaymentPolicy
from handlers.payments import apply_payment_event
from handlers.purchases import observe
from handlers.reconcile import reconcile
from ledger import Ledger, audit
from providers.stripe import CheckoutSession, parse_event
from providers.stripe_api import StripeAPI
from tests.support.fake_billing import FakeBilling
from tests.support.fake_stripe import FakeStripe
from tests.support.stripe_events import envelope, pack_entries
from workers import runtime

PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
CATALOG = PackCatalog({PRICE: CREDITS})
POLICY = PaymentPolicy()
Json = dict[str, Any]


def apply(ledger: Ledger, event: Json, api: StripeAPI, policy: PaymentPolicy = POLICY) -> str:
    return apply_payment_event(
        ledger, parse_event(event), catalog=CATALOG, gateway=api, policy=policy
    )


def landed(ledger: Ledger, fake: FakeStripe, api: StripeAPI, account: str) -> Json:
    """A pack paid at ``AMOUNT`` and landed through its session's event; its PaymentIntent."""
    session, intent, _ = fake.create_paid_checkout(
        account, PRICE, AMOUNT, customer=f"cus_{account}"
    )
    assert apply(ledger, envelope("checkout.session.completed", session), api).endswith("granted")
    return intent


# --------------------------------------------------------------------------- identity of the cause


def test_a_claw_back_is_keyed_by_the_dispute_that_caused_it_not_by_a_running_total(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """A 500-credit pack paid 1900; a dispute lost for 475 takes 125 credits back, however many
    times its ``charge.dispute.closed`` is delivered."""
    intent = landed(ledger, fake, api, "acct_dispute_twice")
    dispute = fake.dispute(intent["latest_charge"], "lost", amount=475)
    (closed,) = fake.events("charge.dispute.closed", about=dispute["id"])
    for _ in range(3):
        apply(ledger, closed, api)
        assert ledger.balance("acct_dispute_twice") == CREDITS - 125
    assert pack_entries(ledger_url, intent["id"]) == [
        ("grant", CREDITS, "acct_dispute_twice"),
        ("clawback", -125, "acct_dispute_twice"),
    ]
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and (payment.refunded_amount, payment.clawed_credits) == (475, 125)
    assert audit(ledger.db) == []


def test_a_claw_back_is_keyed_by_the_refund_that_caused_it_whichever_event_tells_of_it(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """Two partial refunds of the same amount are two causes; each is told by its
    ``refund.created`` and by a ``charge.refunded`` (cumulative), in any order, any number of
    times, and each takes its share once."""
    intent = landed(ledger, fake, api, "acct_two_refunds")
    fake.refund(intent["id"], 475)
    fake.refund(intent["id"], 475)
    told = fake.events("refund.created") + fake.events("charge.refunded")
    for event in [*reversed(told), *told]:
        apply(ledger, event, api)
    assert ledger.balance("acct_two_refunds") == CREDITS - 250
    assert pack_entries(ledger_url, intent["id"]) == [
        ("grant", CREDITS, "acct_two_refunds"),
        ("clawback", -125, "acct_two_refunds"),
        ("clawback", -125, "acct_two_refunds"),
    ]
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and (payment.refunded_amount, payment.clawed_credits) == (950, 250)
    assert audit(ledger.db) == []


# --------------------------------------------------------------------------- compare-and-set


def test_reconciliation_refunds_only_from_the_state_it_decided_on_a_pack_landed_meanwhile_stays(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """``UNLANDED_PACK_ACTION=refund``: the sweep lists a paid, unlanded pack; while it reads
    the payment's refunds at Stripe, the pack's webhook lands it. The customer keeps the pack:
    no refund, no claw-back."""
    refund = PaymentPolicy(landing_window_ms=60_000, unlanded_action="refund")
    session, intent, _ = fake.create_paid_checkout(
        "acct_raced", PRICE, AMOUNT, customer="cus_raced", created=int(time.time()) - 600
    )
    completed = envelope("checkout.session.completed", session)
    with StripeAPI("sk_test_webhook_worker", base=fake.url, max_network_retries=0) as worker:
        # The webhook's worker merged the session, then died before granting.
        event = parse_event(completed)
        assert isinstance(event, CheckoutSession)
        assert observe(ledger, event, CATALOG, worker) is not None
        landings: list[str] = []

        def the_webhook_lands_it() -> None:
            landings.append(apply(ledger, completed, worker, refund))

        # The sweep reads the payment's refunds at Stripe before it refunds: meanwhile...
        fake.meanwhile("GET", "/v1/refunds", the_webhook_lands_it)
        report = reconcile(
            ledger, api, catalog=CATALOG, policy=refund, since_s=int(time.time()) - 86_400
        )
    assert landings == [f"purchase {intent['id']}: granted"]
    assert fake.objects("refund") == [] and fake.refund_calls == []
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and payment.state == "granted"
    assert ledger.balance("acct_raced") == CREDITS
    assert pack_entries(ledger_url, intent["id"]) == [("grant", CREDITS, "acct_raced")]
    assert [d["action"] for d in report.decisions] == ["refund", "kept"]
    assert audit(ledger.db) == []


def test_begin_refund_is_a_compare_and_set_on_the_state_the_refund_was_decided_from(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    intent = landed(ledger, fake, api, "acct_cas")
    pi = intent["id"]
    assert ledger.payments.begin_refund(pi, reason="unlanded_pack", expected_state="paid") is None
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "granted"
    assert [d["decision"] for d in ledger.payments.decisions(pi)] == ["grant"]
    begun = ledger.payments.begin_refund(pi, reason="early_fraud_warning", expected_state="granted")
    assert begun is not None and begun.state == "refunding"
    # Decided already: whoever finds it refunding goes on with the same key and reason.
    again = ledger.payments.begin_refund(pi, reason="x", expected_state="paid")
    assert again is not None
    assert (again.refund_key, again.refund_reason) == (begun.refund_key, "early_fraud_warning")


# --------------------------------------------------------------------------- one transaction


@pytest.fixture
def settling_fails(refundry_env: dict[str, str]) -> Iterator[str]:
    """The ledger of ``refundry_env`` where marking an inbox row processed fails (as a crash at
    that point would); removed again before the test ends."""
    url = refundry_env["DATABASE_URL"]
    runtime.ledger()  # migrated
    _sql(url, *_FAIL_ON_SETTLE[_backend(url)])
    yield url
    _sql(url, *_SETTLE_AGAIN[_backend(url)])


@pytest.mark.parametrize("kind", ["checkout.session.completed", "invoice.paid"])
def test_a_payment_events_inbox_row_is_processed_in_the_same_transaction_as_its_effect(
    settling_fails: str, billing: FakeBilling, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """``process_payment`` crashes at the moment its event would be marked processed: the
    event's effect must not have happened either (a pack landed, a subscription charge
    recorded), so that the event, still pending, is applied once when delivered again."""
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_refundry_inbox")
    monkeypatch.setenv("STRIPE_API_BASE", billing.url)
    monkeypatch.setenv("REFUNDRY_PACKS", f'{{"{PRICE}": {CREDITS}}}')
    runtime.reset()
    from workers.actors import process_payment

    ledger = runtime.ledger()
    if kind == "invoice.paid":
        subscription = billing.create_subscription("cus_atomic", created=int(time.time()) - 60)
        invoice, _ = billing.pay_invoice(subscription["id"], 2900, int(time.time()))
        (event,) = billing.events("invoice.paid", about=invoice["id"])

        def applied() -> bool:
            return ledger.subscriptions.charge(invoice["id"]) is not None
    else:
        session, intent, _ = billing.create_paid_checkout("acct_atomic", PRICE, AMOUNT)
        (event,) = billing.events("checkout.session.completed", about=session["id"])

        def applied() -> bool:
            return pack_entries(settling_fails, intent["id"]) != []

    inbox_id = f"inbox-atomic-{kind}"
    ledger.inbox.record(id=inbox_id, kind="payment", provider="stripe", payload=event)
    with pytest.raises(Exception, match="inbox settle refused"):
        process_payment(inbox_id)
    assert not applied()  # neither happened…
    item = ledger.inbox.get(inbox_id)
    assert item is not None and item.state == "pending"  # …so the event is still owed

    _sql(settling_fails, *_SETTLE_AGAIN[_backend(settling_fails)])
    process_payment(inbox_id)
    assert applied()
    item = ledger.inbox.get(inbox_id)
    assert item is not None and item.state == "processed"
    assert audit(ledger.db) == []


_FAIL_ON_SETTLE = {
    "sqlite": [
        "CREATE TRIGGER settle_fails BEFORE UPDATE OF state ON inbox "
        "WHEN NEW.state = 'processed' BEGIN SELECT RAISE(ABORT, 'inbox settle refused'); END"
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION refundry.settle_fails() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'inbox settle refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER settle_fails BEFORE UPDATE ON refundry.inbox FOR EACH ROW "
        "WHEN (NEW.state = 'processed') EXECUTE FUNCTION refundry.settle_fails()",
    ],
}
_SETTLE_AGAIN = {
    "sqlite": ["DROP TRIGGER IF EXISTS settle_fails"],
    "postgresql": ["DROP TRIGGER IF EXISTS settle_fails ON refundry.inbox"],
}


def _backend(url: str) -> str:
    return "postgresql" if url.startswith(("postgresql://", "postgres://")) else "sqlite"


def _sql(url: str, *statements: str) -> None:
    """Run test-only DDL over a connection of the test's own."""
    if _backend(url) == "postgresql":
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())
        return
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()
