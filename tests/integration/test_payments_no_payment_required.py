"""A Checkout Session with nothing to pay (a 100% discount: ``payment_status``
``no_payment_required``, ``amount_total`` 0, no PaymentIntent) is fulfilled, as Stripe's
fulfillment guidance does whenever ``payment_status`` is not ``unpaid``
(https://docs.stripe.com/checkout/fulfillment): its pack lands once, keyed by the session's
id; with no money in, nothing is ever refunded for it. On SQLite and PostgreSQL."""

from __future__ import annotations

import time

from handlers.payments import apply_payment_event
from handlers.reconcile import reconcile
from ledger import Ledger, audit
from providers.stripe import parse_event
from providers.stripe_api import StripeAPI
from tests.support.fake_stripe import FakeStripe
from tests.support.pack_catalog import AMOUNT, CATALOG, CREDITS, PRICE, REFUND
from tests.support.stripe_events import pack_entries


def free_pack(fake: FakeStripe, account: str, created: int | None = None) -> str:
    """A pack bought with a 100%-off coupon; returns its session id."""
    fake.add_price(PRICE, AMOUNT)
    session = fake.checkout(
        [(PRICE, 1)], client_reference_id=account, created=created, percent_off=100
    )
    assert (session["payment_status"], session["amount_total"]) == ("no_payment_required", 0)
    assert session["payment_intent"] is None
    assert session["total_details"]["amount_discount"] == AMOUNT
    return str(session["id"])


def test_a_session_with_no_payment_required_lands_its_pack_once_keyed_by_the_session(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """A8: the completed session's event (twice, as Stripe may send it) lands the pack once."""
    session_id = free_pack(fake, "acct_free")
    (completed,) = fake.events("checkout.session.completed", about=session_id)
    for _ in range(2):
        apply_payment_event(
            ledger, parse_event(completed), catalog=CATALOG, gateway=api, policy=REFUND
        )

    assert ledger.balance("acct_free") == CREDITS
    assert pack_entries(ledger_url, session_id) == [("grant", CREDITS, "acct_free")]
    payment = ledger.payments.get(session_id)
    assert payment is not None and (payment.state, payment.amount) == ("granted", 0)
    assert fake.refund_calls == []
    assert audit(ledger.db) == []


def test_reconcile_completes_a_no_payment_required_session_even_under_the_refund_action(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """A8: its webhook was lost; there is no money to give back, so it is completed."""
    session_id = free_pack(fake, "acct_free_rc", created=int(time.time()) - 7200)

    since = int(time.time()) - 86_400
    report = reconcile(ledger, api, catalog=CATALOG, policy=REFUND, since_s=since)

    assert [(d["purchase"], d["action"]) for d in report.decisions] == [(session_id, "complete")]
    assert ledger.balance("acct_free_rc") == CREDITS
    assert pack_entries(ledger_url, session_id) == [("grant", CREDITS, "acct_free_rc")]
    assert fake.refund_calls == []
    assert audit(ledger.db) == []


def test_an_expired_session_lands_nothing(ledger: Ledger, fake: FakeStripe, api: StripeAPI) -> None:
    fake.add_price(PRICE, AMOUNT)
    opened = fake.open_checkout([(PRICE, 1)], client_reference_id="acct_gone")
    fake.expire(opened["id"])
    (expired,) = fake.events("checkout.session.expired")
    said = apply_payment_event(
        ledger, parse_event(expired), catalog=CATALOG, gateway=api, policy=REFUND
    )
    assert "nothing to do" in said
    assert ledger.balance("acct_gone") == 0 and ledger.payments.get(opened["id"]) is None
