"""Reconciliation counts the landing window from when a purchase was paid, not from when its
Checkout Session was made: a session lives up to a day before it is paid, and a delayed
method (ACH Direct Debit) settles days later. It also finds a purchase paid in its look-back
whose session was made before it. Every webhook of these purchases was lost. On SQLite and
PostgreSQL, against the local fake Stripe over HTTP."""

from __future__ import annotations

import time

from handlers.packs import PaymentPolicy
from handlers.reconcile import Reconciliation, reconcile
from ledger import Ledger, audit
from providers.stripe_api import StripeAPI
from tests.support.fake_stripe import FakeStripe
from tests.support.pack_catalog import AMOUNT, CATALOG, COMPLETE, CREDITS, PRICE, REFUND
from tests.support.stripe_events import pack_entries

HOUR = 3600


def ago(seconds: int) -> int:
    return int(time.time()) - seconds


def sweep(ledger: Ledger, api: StripeAPI, policy: PaymentPolicy) -> Reconciliation:
    return reconcile(ledger, api, catalog=CATALOG, policy=policy, since_s=ago(24 * HOUR))


def test_the_refund_action_spares_a_delayed_payment_that_succeeded_a_minute_ago(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """A1: session completed two hours ago with ACH Direct Debit, which settled a minute ago;
    its webhook is still on its way. Paid a minute ago: nothing is due."""
    fake.add_price(PRICE, AMOUNT)
    session = fake.checkout(
        [(PRICE, 1)], client_reference_id="acct_ach", created=ago(2 * HOUR), delayed=True
    )
    fake.settle_delayed(session["id"], succeeded=True, at=ago(60))
    pi = session["payment_intent"]

    assert sweep(ledger, api, REFUND).decisions == []

    assert fake.objects("refund") == []
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "paid"
    assert payment.paid_at_ms is not None and payment.paid_at_ms >= ago(61) * 1000
    assert audit(ledger.db) == []


def test_the_refund_action_spares_a_card_payment_made_a_minute_ago_on_an_old_session(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """A1: the session was opened two hours ago (they live a day) and paid by card a minute
    ago; the payment's charge was made when it was paid."""
    fake.add_price(PRICE, AMOUNT)
    session = fake.checkout(
        [(PRICE, 1)], client_reference_id="acct_slow", created=ago(2 * HOUR), paid_at=ago(60)
    )

    assert sweep(ledger, api, REFUND).decisions == []

    assert fake.objects("refund") == []
    payment = ledger.payments.get(session["payment_intent"])
    assert payment is not None and payment.state == "paid"
    assert payment.paid_at_ms is not None and payment.paid_at_ms >= ago(61) * 1000


def test_the_paid_time_comes_from_the_charge_when_the_event_is_gone(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """A1: Stripe never generated (or no longer lists) the payment's events: the charge's
    own time says when a card paid, not the session's."""
    fake.add_price(PRICE, AMOUNT)
    paid = ago(90)
    session = fake.checkout(
        [(PRICE, 1)], client_reference_id="acct_noevt", created=ago(2 * HOUR), paid_at=paid
    )
    with fake._lock:  # the event feed lost them
        for event in fake.events():
            del fake._objects[event["id"]]

    assert sweep(ledger, api, REFUND).decisions == []

    payment = ledger.payments.get(session["payment_intent"])
    assert payment is not None and payment.paid_at_ms == paid * 1000
    assert fake.objects("refund") == []


def test_the_complete_action_finds_a_delayed_payment_on_a_session_older_than_the_lookback(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """A2: ACH Direct Debit settles in up to four business days: a session made three days
    ago (before the day's look-back) whose payment succeeded two hours ago is completed."""
    fake.add_price(PRICE, AMOUNT)
    session = fake.checkout(
        [(PRICE, 1)], client_reference_id="acct_old", created=ago(72 * HOUR), delayed=True
    )
    fake.settle_delayed(session["id"], succeeded=True, at=ago(2 * HOUR))
    pi = session["payment_intent"]

    report = sweep(ledger, api, COMPLETE)

    assert [(d["purchase"], d["action"]) for d in report.decisions] == [(pi, "complete")]
    assert ledger.balance("acct_old") == CREDITS
    assert pack_entries(ledger_url, pi) == [("grant", CREDITS, "acct_old")]
    assert sweep(ledger, api, COMPLETE).decisions == []
    assert audit(ledger.db) == []


def test_a_paid_time_recorded_from_the_webhook_is_kept(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """The ledger's own paid time (its event's) is not replaced by the sweep's reading."""
    fake.add_price(PRICE, AMOUNT)
    session = fake.checkout(
        [(PRICE, 1)], client_reference_id="acct_kept", created=ago(3 * HOUR), paid_at=ago(30)
    )
    said = ago(20) * 1000
    pi = session["payment_intent"]
    ledger.payments.observe(purchase_key=pi, provider="stripe", state="paid", paid_at_ms=said)
    sweep(ledger, api, REFUND)
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.paid_at_ms == said
