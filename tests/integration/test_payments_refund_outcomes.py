"""A refund is money back only once it succeeds, and no longer once it fails: a refund still
``pending`` when ``charge.refunded`` comes takes its claw-back when it succeeds (told by
``refund.updated``, or read again by reconciliation when only ``charge.refunded`` is
subscribed); a refund that fails after its claw-back gives the credits back, keyed by the
refund's id. On SQLite and PostgreSQL, against the local fake Stripe over HTTP."""

from __future__ import annotations

import time
from typing import Any

from handlers.packs import PaymentPolicy
from handlers.payments import apply_payment_event
from handlers.reconcile import reconcile
from ledger import Ledger, audit
from providers.stripe import parse_event
from providers.stripe_api import StripeAPI
from tests.support.fake_stripe import FakeStripe
from tests.support.pack_catalog import AMOUNT, CATALOG, COMPLETE, CREDITS, PRICE
from tests.support.stripe_events import envelope, pack_entries

Json = dict[str, Any]


def apply(ledger: Ledger, api: StripeAPI, *events: Json) -> list[str]:
    return [
        apply_payment_event(
            ledger, parse_event(event), catalog=CATALOG, gateway=api, policy=PaymentPolicy()
        )
        for event in events
    ]


def landed(ledger: Ledger, fake: FakeStripe, api: StripeAPI, account: str) -> tuple[str, str]:
    """A pack bought and landed: (PaymentIntent, Charge)."""
    session, intent, charge = fake.create_paid_checkout(
        account, PRICE, AMOUNT, customer=f"cus_{account}"
    )
    apply(ledger, api, envelope("checkout.session.completed", session))
    assert ledger.balance(account) == CREDITS
    return str(intent["id"]), str(charge["id"])


def kinds(ledger_url: str, purchase: str) -> list[str]:
    return [kind for kind, _, _ in pack_entries(ledger_url, purchase)]


def test_a_pending_refund_is_clawed_back_when_reconciliation_reads_it_succeeded(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """A6: an endpoint subscribed to ``charge.refunded`` only. The refund is pending (the
    balance is short) when it comes; it succeeds later, and no event says so to Refundry:
    the next reconciliation reads the charge's refunds again and claws the pack back."""
    pi, charge = landed(ledger, fake, api, "acct_pending")
    refund = fake.refund(pi, pending_reason="insufficient_funds")
    apply(ledger, api, *fake.events("charge.refunded", about=charge))
    assert ledger.balance("acct_pending") == CREDITS  # not money back yet
    assert kinds(ledger_url, pi) == ["grant"]

    fake.settle_refund(refund["id"], succeeded=True)
    since = int(time.time()) - 86_400
    reconcile(ledger, api, catalog=CATALOG, policy=COMPLETE, since_s=since)

    assert ledger.balance("acct_pending") == 0
    apply(ledger, api, *fake.events("charge.refunded", about=charge))  # redelivered
    reconcile(ledger, api, catalog=CATALOG, policy=COMPLETE, since_s=since)
    assert kinds(ledger_url, pi) == ["grant", "clawback"]
    assert ledger.payments.with_pending_refunds() == []
    assert audit(ledger.db) == []


def test_a_pending_refund_is_clawed_back_when_refund_updated_says_it_succeeded(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """A6: ``refund.created`` (pending) and ``charge.refunded`` take nothing; the
    ``refund.updated`` of its success claws the pack back, once."""
    pi, _ = landed(ledger, fake, api, "acct_pending_upd")
    refund = fake.refund(pi, pending_reason="charge_pending")
    apply(ledger, api, *fake.events("refund.created"), *fake.events("charge.refunded"))
    assert ledger.balance("acct_pending_upd") == CREDITS

    fake.settle_refund(refund["id"], succeeded=True)
    (updated,) = fake.events("refund.updated")
    assert updated["data"]["previous_attributes"]["status"] == "pending"
    apply(ledger, api, updated, updated, *fake.events("charge.refunded"))

    assert ledger.balance("acct_pending_upd") == 0
    assert kinds(ledger_url, pi) == ["grant", "clawback"]
    assert audit(ledger.db) == []


def test_a_refund_that_fails_after_its_claw_back_gives_the_credits_back_once(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """A7: the refund succeeded and clawed the pack back, then failed (the card was closed):
    Stripe reverses it and the merchant keeps the money, so the credits come back, keyed by
    the refund's id; the failure is alerted; every event of it, again, moves nothing more."""
    pi, charge = landed(ledger, fake, api, "acct_refail")
    refund = fake.refund(pi)
    apply(ledger, api, *fake.events("charge.refunded", about=charge))
    assert ledger.balance("acct_refail") == 0

    fake.settle_refund(refund["id"], succeeded=False)
    said = apply(ledger, api, *fake.events("refund.*"), *fake.events("charge.refund.updated"))

    assert f"refund {refund['id']} failed: alerted" in said
    assert ledger.balance("acct_refail") == CREDITS
    assert pack_entries(ledger_url, pi) == [
        ("grant", CREDITS, "acct_refail"),
        ("clawback", -CREDITS, "acct_refail"),
        ("restore", CREDITS, "acct_refail"),
    ]
    apply(ledger, api, *fake.events("refund.*"), *fake.events("charge.refunded"))
    assert ledger.balance("acct_refail") == CREDITS
    payment = ledger.payments.get(pi)
    assert payment is not None and (payment.state, payment.refunded_amount) == ("granted", 0)
    decisions = [str(d["decision"]) for d in ledger.payments.decisions(pi)]
    assert decisions.count("restore") == 1 and "alert" in decisions
    assert audit(ledger.db) == []


def test_a_refund_that_fails_while_pending_takes_and_gives_nothing(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    pi, charge = landed(ledger, fake, api, "acct_pendfail")
    refund = fake.refund(pi, pending_reason="insufficient_funds")
    apply(ledger, api, *fake.events("charge.refunded", about=charge))
    fake.settle_refund(refund["id"], succeeded=False)
    apply(ledger, api, *fake.events("refund.*"))
    assert ledger.balance("acct_pendfail") == CREDITS
    assert kinds(ledger_url, pi) == ["grant"]
    assert ledger.payments.with_pending_refunds() == []
    assert audit(ledger.db) == []
