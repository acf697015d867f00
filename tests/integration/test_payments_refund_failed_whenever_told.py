"""A refund that fails after it succeeded (the card it went back to was closed: Stripe sends
``refund.failed`` and returns the money to the merchant's balance,
https://docs.stripe.com/refunds#failed-refunds) leaves a purchase the same credits whenever
its events are told: before or after our own refund of the purchase, before or after the
purchase's own events. The credits a purchase keeps depend on the set of facts, not on their
order. On SQLite and PostgreSQL, Stripe being the local fake over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.packs import PackCatalog, PaymentPolicy
from handlers.payments import apply_payment_event
from ledger import Ledger, audit
from providers.stripe import parse_event
from providers.stripe_api import StripeAPI
from tests.support.fake_stripe import FakeStripe
from tests.support.stripe_events import pack_entries

PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
CATALOG = PackCatalog({PRICE: CREDITS})
REVOKE = PaymentPolicy(fraud_action="refund_and_revoke")
Json = dict[str, Any]


def tell(ledger: Ledger, api: StripeAPI, events: list[Json]) -> None:
    for event in events:
        apply_payment_event(ledger, parse_event(event), catalog=CATALOG, gateway=api, policy=REVOKE)


def refund_events(fake: FakeStripe, refund_id: str, charge_id: str) -> list[Json]:
    """``refund.created`` of one refund and the charge's ``charge.refunded`` events."""
    return fake.events("refund.created", about=refund_id) + fake.events(
        "charge.refunded", about=charge_id
    )


@pytest.mark.parametrize("failing", ["dashboard", "ours"])
@pytest.mark.parametrize("when", ["while_it_stood", "after_our_refund", "after_it_failed"])
def test_a_refund_failed_after_our_refund_leaves_the_same_credits_whenever_told(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI, when: str, failing: str
) -> None:
    """Kind: a claw-back decided on which refunds were told before our refund. A landed
    500-credit pack paid 1900 is refunded 475 in the Dashboard; a fraud warning then refunds
    the other 1425 (ours); then one of the two refunds fails. The Dashboard refund's own
    events are told while it stood, after our refund, or only once it had failed. Our refund
    is a decision about the whole purchase: it keeps no credit, whichever refund fails and
    whenever that is told; the money back at the merchant's is one alert for a person."""
    account = f"acct_rf_{when}_{failing}"
    session, intent, charge = fake.create_paid_checkout(
        account, PRICE, AMOUNT, customer=f"cus_{account}"
    )
    tell(ledger, api, fake.events("checkout.session.completed", about=session["id"]))
    dashboard = fake.refund(intent["id"], 475)
    if when == "while_it_stood":
        tell(ledger, api, refund_events(fake, dashboard["id"], charge["id"]))
    warning = fake.early_fraud_warning(charge["id"])
    tell(ledger, api, fake.events("radar.early_fraud_warning.created", about=warning["id"]))
    (ours,) = [r for r in fake.objects("refund") if r["metadata"].get("refundry_key")]
    assert ours["amount"] == AMOUNT - 475
    assert ledger.balance(account) == 0
    if when == "after_our_refund":
        tell(ledger, api, refund_events(fake, dashboard["id"], charge["id"]))
    fake.fail_refund(dashboard["id"] if failing == "dashboard" else ours["id"])
    if when == "after_it_failed":
        tell(ledger, api, refund_events(fake, dashboard["id"], charge["id"]))
    tell(ledger, api, fake.events("refund.failed") * 2)

    assert ledger.balance(account) == 0
    assert sum(amount for _, amount, _ in pack_entries(ledger_url, intent["id"])) == 0
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and payment.state == "refunded"
    alerts = [d for d in ledger.payments.decisions(intent["id"]) if d["decision"] == "alert"]
    assert any("failed" in str(a["reason"]) for a in alerts)
    assert audit(ledger.db) == []


@pytest.mark.parametrize("when", ["before_the_purchase", "after_it_failed"])
def test_a_refund_that_stopped_a_pack_landing_then_failed_lands_it_whenever_told(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI, when: str
) -> None:
    """Kind: a purchase left refunded by a refund no longer standing. All of a payment is
    refunded in the Dashboard before its pack lands, then the refund fails (the money is the
    merchant's again). Told before the purchase's events, the refund keeps the pack from
    landing, and its failure lands it then; told only after it failed, the pack lands at
    once. Either way the pack lands, once, whole."""
    account = f"acct_unlanded_{when}"
    session, intent, charge = fake.create_paid_checkout(
        account, PRICE, AMOUNT, customer=f"cus_{account}"
    )
    dashboard = fake.refund(intent["id"])
    purchase = fake.events("checkout.session.completed", about=session["id"])
    if when == "before_the_purchase":
        tell(ledger, api, refund_events(fake, dashboard["id"], charge["id"]) + purchase)
        assert ledger.balance(account) == 0
    fake.fail_refund(dashboard["id"])
    if when == "after_it_failed":
        tell(ledger, api, refund_events(fake, dashboard["id"], charge["id"]) + purchase)
    tell(ledger, api, fake.events("refund.failed") * 2)

    assert ledger.balance(account) == CREDITS
    assert [kind for kind, _, _ in pack_entries(ledger_url, intent["id"])].count("grant") == 1
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and payment.state == "granted"
    assert audit(ledger.db) == []


def test_a_refund_of_ours_given_up_does_not_make_a_later_provider_refund_ours(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """Kind: a purchase taken as refunded by us after our refund was given up. All of a
    payment is refunded in the Dashboard (told), the refund then fails (not told yet) and
    the charge is disputed; a fraud warning's refund is refused under the chargeback and
    given up; the purchase's own event then finds all its money back (as told) and does not
    land it. The refund's failure, told last, lands it, as it would have had it been told
    first: the refused refund of ours left no decision of ours standing."""
    account = "acct_given_up"
    session, intent, charge = fake.create_paid_checkout(
        account, PRICE, AMOUNT, customer=f"cus_{account}"
    )
    dashboard = fake.refund(intent["id"])
    tell(ledger, api, fake.events("refund.created", about=dashboard["id"]))
    fake.fail_refund(dashboard["id"])
    fake.dispute(charge["id"])
    warning = fake.early_fraud_warning(charge["id"])
    tell(ledger, api, fake.events("radar.early_fraud_warning.created", about=warning["id"]))
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and payment.state == "paid"  # our refund refused, given up
    tell(ledger, api, fake.events("checkout.session.completed", about=session["id"]))
    assert ledger.balance(account) == 0  # all its money back, as far as told

    tell(ledger, api, fake.events("refund.failed"))
    assert ledger.balance(account) == CREDITS
    assert [kind for kind, _, _ in pack_entries(ledger_url, intent["id"])] == ["grant"]
    assert audit(ledger.db) == []
