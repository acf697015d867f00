"""A forged Stripe event mints nothing and refunds nothing, whichever door it comes through.

Each test is named for a kind of forgery: a Checkout Session or a PaymentIntent Stripe never
made, or a snapshot of a real one doctored (a big pack's price in its metadata, a tiny amount,
paid when it is not, a date moved into the duplicate window); an early fraud warning, a lost
dispute or a refund Stripe never made, or one purchase's refunded charge told as another's;
a cancellation Stripe never confirmed, an invoice it never issued. Every money effect is
decided on the object as Stripe's API returns it to our key; the posted event is a hint. An
object Stripe does not know is a permanent ``NotAtPaymentProvider``, one whose state belies
the event an ``EventNotConfirmed``; through ``report_payment``, ``report_stripe_webhook`` and
an inbox row recorded as the ingress records it, real worker processes dead-letter them. Stripe
is the local fake over HTTP; the subject is the confirmation, not the ledger: SQLite only."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import stripe

from handlers.packs import PackCatalog, PaymentPolicy
from handlers.payments import apply_payment_event
from ledger import Ledger, audit
from ledger.errors import ConfigurationError, EventNotConfirmed, NotAtPaymentProvider
from providers.stripe import parse_event
from providers.stripe_api import StripeAPI
from tests.support.backends import ONE_BACKEND
from tests.support.commands import WorkerProcesses
from tests.support.fake_billing import FakeBilling
from tests.support.fake_stripe import FakeStripe
from tests.support.forged_stripe import forged_session, made_up, made_up_about
from tests.support.settings import configure
from tests.support.stripe_events import apply_subscription, envelope, pack_entries
from tests.support.waiting import wait_until
from workers import client, runtime

SECRET = "whsec_refundry_forged_0123456789abcdef"
PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
BIG, BIG_CREDITS = "price_big", 100_000
PACKS = {PRICE: CREDITS, BIG: BIG_CREDITS}
CATALOG = PackCatalog(PACKS)
POLICY = PaymentPolicy(duplicate_window_ms=600_000)
Json = dict[str, Any]

pytestmark = ONE_BACKEND


def apply(ledger: Ledger, event: Json, api: StripeAPI) -> str:
    return apply_payment_event(
        ledger, parse_event(event), catalog=CATALOG, gateway=api, policy=POLICY
    )


def landed(ledger: Ledger, fake: FakeStripe, api: StripeAPI, account: str) -> tuple[Json, Json]:
    """A pack really bought and landed through its genuine event: (payment_intent, charge)."""
    session, intent, charge = fake.create_paid_checkout(
        account, PRICE, AMOUNT, customer=f"cus_{account}"
    )
    assert apply(ledger, envelope("checkout.session.completed", session), api).endswith("granted")
    return intent, charge


def assert_untouched(ledger: Ledger, url: str, fake: FakeStripe, account: str, pi: str) -> None:
    """The real purchase still holds its pack and Stripe was asked for no refund."""
    assert fake.refund_calls == []
    assert ledger.balance(account) == CREDITS
    assert pack_entries(url, pi) == [("grant", CREDITS, account)]
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "granted"
    assert [d["decision"] for d in ledger.payments.decisions(pi)] == ["grant"]
    assert audit(ledger.db) == []


# --------------------------------------------------------------------------- purchases


def test_a_forged_checkout_session_for_a_big_pack_grants_nothing(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    session = forged_session("acct_thief", BIG)
    with pytest.raises(NotAtPaymentProvider) as caught:
        apply(ledger, envelope("checkout.session.completed", session), api)
    assert caught.value.permanent
    assert caught.value.fields["id"] == session["id"]
    assert caught.value.reason.startswith("NotAtPaymentProvider ")
    assert ledger.balance("acct_thief") == 0
    assert ledger.payments.get(session["payment_intent"]) is None
    assert ledger.payments.get(session["id"]) is None
    assert [r.path for r in fake.requests] == [f"/v1/checkout/sessions/{session['id']}"]


def test_a_forged_payment_intent_naming_a_big_pack_in_its_metadata_grants_nothing(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    intent = {
        "id": made_up("pi"),
        "object": "payment_intent",
        "status": "succeeded",
        "amount": 1,
        "amount_received": 1,
        "currency": "usd",
        "customer": None,
        "latest_charge": None,
        "metadata": {"account_id": "acct_thief", "price_id": BIG},
        "created": int(time.time()),
    }
    with pytest.raises(NotAtPaymentProvider):
        apply(ledger, envelope("payment_intent.succeeded", intent), api)
    assert ledger.balance("acct_thief") == 0
    assert ledger.payments.get(intent["id"]) is None
    assert fake.refund_calls == []


def test_a_doctored_snapshot_of_a_real_session_grants_only_what_stripe_says_was_bought(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    fake.add_price(PRICE, AMOUNT)
    real = fake.checkout([(PRICE, 1)], client_reference_id="acct_buyer", customer="cus_buyer")
    doctored = {
        **real,
        "amount_total": 1,
        "client_reference_id": "acct_thief",
        "metadata": {"price_id": BIG, "account_id": "acct_thief"},
    }
    assert apply(ledger, envelope("checkout.session.completed", doctored), api).endswith("granted")
    pi = real["payment_intent"]
    assert ledger.balance("acct_thief") == 0
    assert ledger.balance("acct_buyer") == CREDITS
    assert pack_entries(ledger_url, pi) == [("grant", CREDITS, "acct_buyer")]
    payment = ledger.payments.get(pi)
    assert payment is not None and (payment.amount, payment.price_id) == (AMOUNT, PRICE)


def test_a_session_still_awaiting_its_payment_posted_as_paid_grants_nothing(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    fake.add_price(PRICE, AMOUNT)
    pending = fake.checkout([(PRICE, 1)], client_reference_id="acct_waits", delayed=True)
    posted_paid = {**pending, "payment_status": "paid"}
    said = apply(ledger, envelope("checkout.session.completed", posted_paid), api)
    assert said.endswith("unpaid, nothing to grant")
    pi = pending["payment_intent"]
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "unpaid"
    assert ledger.balance("acct_waits") == 0 and pack_entries(ledger_url, pi) == []
    posted_succeeded = envelope("payment_intent.succeeded", fake.get(pi) | {"status": "succeeded"})
    with pytest.raises(EventNotConfirmed) as caught:
        apply(ledger, posted_succeeded, api)
    assert caught.value.permanent and caught.value.fields["status"] == "processing"
    settled = envelope("checkout.session.async_payment_succeeded", posted_paid)
    with pytest.raises(EventNotConfirmed) as caught:
        apply(ledger, settled, api)
    assert caught.value.fields["payment_status"] == "unpaid"
    assert ledger.balance("acct_waits") == 0 and pack_entries(ledger_url, pi) == []
    fake.settle_delayed(pending["id"], succeeded=True)
    told_failed = envelope("checkout.session.async_payment_failed", pending)
    with pytest.raises(EventNotConfirmed):  # paid at Stripe: it did not fail
        apply(ledger, told_failed, api)
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "unpaid"


def test_a_real_purchase_redated_into_the_duplicate_window_is_not_refunded_as_a_duplicate(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """Two real purchases of the same pack 50 minutes apart; the second one's event is posted
    dated a minute after the first, inside the ten-minute duplicate window. Its date is
    Stripe's, so it is granted, not refunded."""
    t0 = int(time.time()) - 3600
    first, _, _ = fake.create_paid_checkout("acct_twice", PRICE, AMOUNT, "usd", "cus_2", t0)
    second, _, _ = fake.create_paid_checkout("acct_twice", PRICE, AMOUNT, "usd", "cus_2", t0 + 3000)
    apply(ledger, envelope("checkout.session.completed", first), api)
    redated = envelope("checkout.session.completed", {**second, "created": t0 + 60})
    assert apply(ledger, redated, api) == f"purchase {second['payment_intent']}: granted"
    assert fake.refund_calls == []
    assert ledger.balance("acct_twice") == 2 * CREDITS
    payment = ledger.payments.get(second["payment_intent"])
    assert payment is not None and payment.paid_at_ms == (t0 + 3000) * 1000


# --------------------------------------------------------------------------- money going back


def test_a_forged_early_fraud_warning_refunds_nothing(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    intent, charge = landed(ledger, fake, api, "acct_victim")
    warning = made_up_about("radar.early_fraud_warning", "issfr", charge, actionable=True)
    with pytest.raises(NotAtPaymentProvider) as caught:
        apply(ledger, envelope("radar.early_fraud_warning.created", warning), api)
    assert caught.value.fields["id"] == warning["id"]
    assert_untouched(ledger, ledger_url, fake, "acct_victim", intent["id"])


def test_a_forged_lost_dispute_claws_nothing_back(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    intent, charge = landed(ledger, fake, api, "acct_victim")
    made = made_up_about("dispute", "dp", charge, amount=AMOUNT, currency="usd", status="lost")
    with pytest.raises(NotAtPaymentProvider):
        apply(ledger, envelope("charge.dispute.closed", made), api)
    still_open = fake.dispute(charge["id"])  # a real dispute the bank has not decided yet
    said = apply(ledger, envelope("charge.dispute.closed", {**still_open, "status": "lost"}), api)
    assert said == "dispute needs_response: nothing to claw back"
    assert_untouched(ledger, ledger_url, fake, "acct_victim", intent["id"])


def test_a_forged_refund_claws_nothing_back(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    intent, charge = landed(ledger, fake, api, "acct_victim")
    refund = made_up_about("refund", "re", charge, amount=AMOUNT, status="succeeded")
    for kind in ("refund.created", "refund.updated"):
        with pytest.raises(NotAtPaymentProvider):
            apply(ledger, envelope(kind, refund), api)
    assert_untouched(ledger, ledger_url, fake, "acct_victim", intent["id"])


def test_a_refunded_charge_of_one_purchase_told_as_anothers_claws_back_only_its_own(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """The attacker refunds their own purchase, then posts its ``charge.refunded`` naming the
    victim's PaymentIntent: Stripe's charge names the attacker's, and only that one pays."""
    victim, _ = landed(ledger, fake, api, "acct_victim")
    own, own_charge = landed(ledger, fake, api, "acct_attacker")
    fake.refund(own["id"])
    told = {**fake.get(own_charge["id"]), "payment_intent": victim["id"]}
    assert apply(ledger, envelope("charge.refunded", told), api) == (
        f"purchase {own['id']}: {CREDITS} credits clawed back"
    )
    assert ledger.balance("acct_attacker") == 0
    assert ledger.balance("acct_victim") == CREDITS
    assert pack_entries(ledger_url, victim["id"]) == [("grant", CREDITS, "acct_victim")]
    with pytest.raises(NotAtPaymentProvider):
        made = {**told, "id": made_up("ch")}
        apply(ledger, envelope("charge.refunded", made), api)
    assert ledger.balance("acct_victim") == CREDITS
    assert audit(ledger.db) == []


# --------------------------------------------------------------------------- subscriptions


def test_a_forged_cancellation_refunds_no_subscription_charge(
    ledger: Ledger, billing: FakeBilling, billing_api: StripeAPI
) -> None:
    t0 = int(time.time()) - 86_400
    sub = billing.create_subscription("cus_running", created=t0)
    invoice, _ = billing.pay_invoice(sub["id"], 2900, t0 + 300)
    (paid,) = billing.events("invoice.paid", about=invoice["id"])
    apply_subscription(ledger, paid, billing_api)
    posted = {**sub, "status": "canceled", "canceled_at": t0 + 200, "ended_at": t0 + 200}
    with pytest.raises(EventNotConfirmed) as caught:
        apply_subscription(ledger, envelope("customer.subscription.deleted", posted), billing_api)
    assert caught.value.permanent and caught.value.fields["status"] == "active"
    assert ledger.subscriptions.cancellation(sub["id"]) is None
    charge = ledger.subscriptions.charge(invoice["id"])
    assert charge is not None and charge.state == "kept"
    assert billing.refund_calls == []


def test_a_forged_invoice_refunds_nothing(
    ledger: Ledger, billing: FakeBilling, billing_api: StripeAPI
) -> None:
    """A real subscription, really cancelled; an invoice it never had, 'paid' after the
    cancellation through a real PaymentIntent of another payment, would refund that payment."""
    t0 = int(time.time()) - 86_400
    sub = billing.create_subscription("cus_cancelled", created=t0)
    _, other_payment = billing.pay_invoice(sub["id"], 2900, t0 + 100)
    cancelled = billing.cancel_subscription(sub["id"], at=t0 + 200)
    apply_subscription(ledger, envelope("customer.subscription.deleted", cancelled), billing_api)
    made = {
        "id": made_up("in"),
        "object": "invoice",
        "customer": "cus_cancelled",
        "subscription": sub["id"],
        "payment_intent": other_payment["id"],
        "amount_paid": 2900,
        "currency": "usd",
        "status": "paid",
        "paid_out_of_band": False,
        "status_transitions": {"paid_at": t0 + 300},
        "created": t0 + 300,
    }
    with pytest.raises(NotAtPaymentProvider):
        apply_subscription(ledger, envelope("invoice.paid", made), billing_api)
    assert ledger.subscriptions.charge(made["id"]) is None
    assert billing.refund_calls == []


# --------------------------------------------------------------------------- every door


@pytest.fixture
def stripe_env(stripe_settings: Callable[..., dict[str, str]]) -> dict[str, str]:
    return stripe_settings(PACKS, STRIPE_WEBHOOK_SECRET=SECRET)


def test_forged_events_through_every_door_are_dead_lettered_and_move_no_money(
    stripe_env: dict[str, str], workers: WorkerProcesses, fake: FakeStripe
) -> None:
    """``report_payment`` (the issue's reproduction), ``report_stripe_webhook`` (signed with our
    secret: the signature proves who posted it, not that Stripe made the charge it names), and
    an inbox row recorded and enqueued as the webhook ingress records it."""
    from workers.actors import enqueue_event

    workers.env |= stripe_env
    ledger = runtime.ledger()
    session, intent, charge = fake.create_paid_checkout("acct_victim", PRICE, AMOUNT)
    genuine = client.report_payment(
        provider="stripe", event=envelope("checkout.session.completed", session)
    )
    by_report = client.report_payment(
        provider="stripe",
        event=envelope("checkout.session.completed", forged_session("acct_thief", BIG)),
    )
    warning = made_up_about("radar.early_fraud_warning", "issfr", charge)
    body = json.dumps(envelope("radar.early_fraud_warning.created", warning))
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET, int(time.time()))
    by_webhook = client.report_stripe_webhook(payload=body.encode(), signature=header)
    dispute = made_up_about("dispute", "dp", charge, amount=AMOUNT, status="lost")
    by_ingress = uuid.uuid4().hex
    ledger.inbox.record(
        id=by_ingress,
        kind="payment",
        provider="stripe",
        payload=envelope("charge.dispute.closed", dispute),
    )
    enqueue_event("payment", by_ingress)
    workers.start(processes=1, threads=2)
    ids = [genuine, by_report, by_webhook, by_ingress]

    def settled() -> bool:
        return all(ledger.inbox.get(i).state != "pending" for i in ids)  # type: ignore[union-attr]

    log = workers.log
    wait_until(settled, timeout=60, message=log.read_text() if log.exists() else "")
    dead = {d["message_id"]: d["reason"] for d in ledger.dead.all()}  # the inbox id
    assert sorted(dead) == sorted([by_report, by_webhook, by_ingress])
    for inbox_id, reason in dead.items():
        assert reason.startswith("NotAtPaymentProvider "), reason
        assert ledger.inbox.get(inbox_id).state == "dead"  # type: ignore[union-attr]
    assert ledger.inbox.get(genuine).state == "processed"  # type: ignore[union-attr]
    assert client.balance("acct_thief") == 0
    assert client.balance("acct_victim") == CREDITS
    assert fake.refund_calls == []
    assert pack_entries(stripe_env["DATABASE_URL"], intent["id"]) == [
        ("grant", CREDITS, "acct_victim")
    ]
    assert audit(ledger.db) == []


def test_without_a_stripe_api_key_no_payment_event_can_be_confirmed_and_none_is_applied(
    refundry_env: dict[str, str], fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    configure(
        monkeypatch, refundry_env, REFUNDRY_PACKS=json.dumps({PRICE: CREDITS, BIG: BIG_CREDITS})
    )
    from workers.actors import process_payment

    ledger = runtime.ledger()
    session, _, _ = fake.create_paid_checkout("acct_real", PRICE, AMOUNT)
    for account, obj in (("acct_thief", forged_session("acct_thief", BIG)), ("acct_real", session)):
        inbox_id = client.report_payment(
            provider="stripe", event=envelope("checkout.session.completed", obj)
        )
        with pytest.raises(ConfigurationError) as caught:
            process_payment(inbox_id)
        assert caught.value.permanent
        assert caught.value.fields["variable"] == "STRIPE_API_KEY"
        assert client.balance(account) == 0
        assert ledger.payments.get(obj["payment_intent"]) is None
    assert fake.requests == []
