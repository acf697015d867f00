"""No money effect of a payment may depend on which of its events Refundry was told first. Each
test is named for a kind of fault that the payments state machine (the first three) or a
worker test's intermittent failure (the last) brought to light: an event dropped because
it came before the purchase it is about; a refund decided on the ledger's view alone when
Stripe has already given all the money back; a refunded purchase that keeps credits because
an earlier refund was not told yet; two events applied at the same instant that each miss
the other. On SQLite and PostgreSQL, Stripe being the local fake over HTTP."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from handlers.packs import PackCatalog, PaymentPolicy
from handlers.payments import apply_payment_event
from handlers.subscriptions import apply_subscription_event
from ledger import Ledger, audit
from ledger.payments import refund_key
from providers.stripe import parse_event
from providers.stripe_api import StripeAPI
from providers.stripe_subscriptions import parse_subscription_event
from tests.support.fake_billing import FakeBilling
from tests.support.fake_stripe import FakeStripe
from tests.support.stripe_events import envelope, pack_entries
from tests.support.waiting import wait_until

PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
CATALOG = PackCatalog({PRICE: CREDITS})
REVOKE = PaymentPolicy(fraud_action="refund_and_revoke")
Json = dict[str, Any]


def apply(ledger: Ledger, event: Json, api: StripeAPI) -> str:
    return apply_payment_event(
        ledger, parse_event(event), catalog=CATALOG, gateway=api, policy=REVOKE
    )


def told(ledger: Ledger, fake: FakeStripe, api: StripeAPI, kind: str, about: str) -> list[str]:
    """Apply every event of ``kind`` about the object ``about``, as Stripe made them."""
    return [apply(ledger, event, api) for event in fake.events(kind, about=about)]


def ours(fake: FakeStripe, payment_intent: str) -> list[Json]:
    """Stripe's refunds of ``payment_intent`` that Refundry made (its key in the metadata)."""
    return [
        r
        for r in fake.objects("refund")
        if r["payment_intent"] == payment_intent and r["metadata"].get("refundry_key")
    ]


def test_a_fraud_warning_told_before_its_purchase_still_refunds_and_revokes(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """Kind: an event dropped because it came before the purchase it is about. Stripe does
    not order events: the warning is applied first, then the purchase's own events."""
    session, intent, charge = fake.create_paid_checkout(
        "acct_warned_first", PRICE, AMOUNT, customer="cus_warned_first"
    )
    warning = fake.early_fraud_warning(charge["id"])
    told(ledger, fake, api, "radar.early_fraud_warning.created", warning["id"])
    told(ledger, fake, api, "checkout.session.completed", session["id"])
    told(ledger, fake, api, "payment_intent.succeeded", intent["id"])
    assert ledger.balance("acct_warned_first") == 0
    (refund,) = ours(fake, intent["id"])
    assert (refund["amount"], refund["metadata"]["refundry_key"]) == (
        AMOUNT,
        refund_key(intent["id"]),
    )
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and payment.state == "refunded"
    assert audit(ledger.db) == []


@pytest.mark.parametrize("cause", ["early_fraud_warning", "duplicate"])
def test_our_refund_of_a_payment_stripe_already_gave_back_settles_it_instead_of_sticking(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI, cause: str
) -> None:
    """Kind: a refund decided on the ledger's view alone. The payment was refunded in full in
    the Dashboard, its refund's events not told yet; then Refundry decides to refund it
    (a fraud warning; a duplicate of a pack just landed). Stripe refuses a refund of nothing
    (``charge_already_refunded``): the purchase is refunded all the same, with every credit it
    had landed taken back, and no refund of ours is made; nothing is left ``refunding``."""
    account = f"acct_given_back_{cause}"
    customer = f"cus_{account}"
    first, _, _ = fake.create_paid_checkout(account, PRICE, AMOUNT, customer=customer)
    told(ledger, fake, api, "checkout.session.completed", first["id"])
    if cause == "duplicate":  # the same pack bought again a moment later
        session, intent, _ = fake.create_paid_checkout(account, PRICE, AMOUNT, customer=customer)
    else:
        session, intent = first, fake.get(first["payment_intent"])
    fake.refund(intent["id"])  # in the Dashboard: all of it
    if cause == "duplicate":
        said = told(ledger, fake, api, "checkout.session.completed", session["id"])
    else:
        warning = fake.early_fraud_warning(intent["latest_charge"])
        said = told(ledger, fake, api, "radar.early_fraud_warning.created", warning["id"])
    assert len(said) == 1
    assert ours(fake, intent["id"]) == []
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and payment.state == "refunded"
    expected = 0 if cause == "early_fraud_warning" else CREDITS  # the first pack stays
    assert ledger.balance(account) == expected
    for event in fake.events("refund.created") + fake.events("charge.refunded"):
        apply(ledger, event, api)  # the Dashboard refund, told at last: nothing more moves
    assert ledger.balance(account) == expected
    assert audit(ledger.db, landing_window_ms=0) == []
    assert sum(amount for _, amount, _ in pack_entries(ledger_url, intent["id"])) == 0


def test_a_purchase_we_refunded_keeps_no_credits_though_an_earlier_refund_is_told_later(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """Kind: a claw-back that depends on which other events came first. A landed 500-credit
    pack paid 1900 is refunded 475 in the Dashboard (not told yet); a fraud warning then
    refunds the other 1425. Every credit goes back at once, not the refund's share only;
    the Dashboard refund, told last, takes nothing more."""
    session, intent, charge = fake.create_paid_checkout(
        "acct_refunded_twice", PRICE, AMOUNT, customer="cus_refunded_twice"
    )
    told(ledger, fake, api, "checkout.session.completed", session["id"])
    fake.refund(intent["id"], 475)
    warning = fake.early_fraud_warning(charge["id"])
    told(ledger, fake, api, "radar.early_fraud_warning.created", warning["id"])
    (refund,) = ours(fake, intent["id"])
    assert refund["amount"] == AMOUNT - 475
    assert ledger.balance("acct_refunded_twice") == 0
    assert audit(ledger.db) == []
    for event in fake.events("refund.created") + fake.events("charge.refunded"):
        apply(ledger, event, api)
    assert ledger.balance("acct_refunded_twice") == 0
    assert sum(amount for _, amount, _ in pack_entries(ledger_url, intent["id"])) == 0
    assert audit(ledger.db) == []


def test_a_refund_decided_after_stripe_refused_one_goes_under_a_new_key(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """Kind: an idempotency key reused after Stripe kept an answer under it. A fraud
    warning's refund is refused while a chargeback is open (``charge_disputed``), and Stripe
    keeps that answer under the key; then an earlier identical purchase is told, and the
    disputed one is to be refunded as its duplicate. Under the first key, with another reason,
    Stripe would refuse the request as a key reuse and the refund would be retried forever:
    the second decision is a new request, refused for what it is, and given up once more."""
    customer = "cus_refused_once"
    earlier, _, _ = fake.create_paid_checkout("acct_refused_once", PRICE, AMOUNT, customer=customer)
    session, intent, charge = fake.create_paid_checkout(
        "acct_refused_once", PRICE, AMOUNT, customer=customer
    )
    told(ledger, fake, api, "checkout.session.completed", session["id"])
    fake.dispute(charge["id"])
    warning = fake.early_fraud_warning(charge["id"])
    told(ledger, fake, api, "radar.early_fraud_warning.created", warning["id"])
    told(ledger, fake, api, "checkout.session.completed", earlier["id"])  # no key reuse error
    disputed = ledger.payments.get(intent["id"])
    assert disputed is not None
    assert (disputed.state, disputed.refund_attempt) == ("granted", 2)
    assert ours(fake, intent["id"]) == []
    assert ledger.balance("acct_refused_once") == 2 * CREDITS  # the chargeback decides
    assert audit(ledger.db) == []


# --------------------------------------------------------------------------- told at once

_HOLD_AT_COMMIT = [
    "CREATE FUNCTION refundry.hold_at_commit() RETURNS trigger AS $$ "
    "BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$ LANGUAGE plpgsql",
    *(
        f"CREATE CONSTRAINT TRIGGER hold_at_commit AFTER INSERT ON refundry.{table} "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refundry.hold_at_commit()"
        for table in ("subscription_cancellations", "subscription_charges")
    ),
]


@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_a_cancellation_and_an_invoice_applied_at_the_same_instant_each_see_the_other(
    ledger: Ledger, ledger_url: str, billing: FakeBilling
) -> None:
    """Kind: a check that another row exists, then a write, in two transactions with nothing
    between them (a write skew). Two workers apply a subscription's cancellation and an
    invoice paid after it at the same instant: each transaction is held a moment at its
    commit (a deferred trigger), so the invoice's reads before the cancellation commits.
    The charge is refunded all the same, once. (SQLite has a single writer: PostgreSQL only.)"""
    t0 = int(time.time()) - 3600
    sub = billing.create_subscription("cus_at_once", created=t0)
    cancelled = billing.cancel_subscription(sub["id"], at=t0 + 100)
    invoice, intent = billing.pay_invoice(sub["id"], 2900, t0 + 200)
    cancellation = envelope("customer.subscription.deleted", cancelled, created=t0 + 100)
    paid = envelope("invoice.paid", invoice, created=t0 + 200)
    ledger.balance("acct_migrated")  # the schema exists before the triggers go in
    with psycopg.connect(ledger_url, autocommit=True) as conn:
        for statement in _HOLD_AT_COMMIT:
            conn.execute(statement.encode())
    with StripeAPI("sk_test_at_once", base=billing.url, max_network_retries=0) as api:

        def apply_now(event: Json) -> str:
            parsed = parse_subscription_event(event)
            assert parsed is not None
            return apply_subscription_event(ledger, parsed, gateway=api)

        with ThreadPoolExecutor(max_workers=1) as other_worker:
            first = other_worker.submit(apply_now, cancellation)
            wait_until(lambda: _held_at_commit(ledger_url), message="no commit held")
            apply_now(paid)
            first.result(timeout=30)
    (refund,) = billing.objects("refund")
    assert refund["payment_intent"] == intent["id"]
    charge = ledger.subscriptions.charge(invoice["id"])
    assert charge is not None and charge.state == "refunded"
    assert audit(ledger.db) == []


def _held_at_commit(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(b"SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
        found = row.fetchone()
    return found is not None and int(found[0]) > 0
