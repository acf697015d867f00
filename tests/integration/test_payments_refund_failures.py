"""A refund of ours that failed is never dropped: the event's retry, or the next
reconciliation, carries it on; a 500 that Stripe kept under the refund's idempotency key is
left behind for the next deterministic key, only after the payment's refunds were listed at
Stripe and none of ours was there; a refund that keeps failing raises one alert. On SQLite
and PostgreSQL, against the local fake Stripe over HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest

from handlers.packs import PackCatalog, PaymentPolicy
from handlers.payments import apply_payment_event
from handlers.purchase_refunds import STUCK_AFTER_ATTEMPTS
from handlers.reconcile import reconcile
from ledger import Ledger, audit
from ledger.payments import refund_key
from providers.stripe import parse_event
from providers.stripe_api import PaymentProviderUnavailable, StripeAPI
from tests.support.fake_stripe import FakeStripe
from tests.support.stripe_events import envelope

PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
CATALOG = PackCatalog({PRICE: CREDITS})
POLICY = PaymentPolicy(duplicate_window_ms=600_000, landing_window_ms=1000)
Json = dict[str, Any]


def apply(ledger: Ledger, event: Json, api: StripeAPI) -> str:
    return apply_payment_event(
        ledger, parse_event(event), catalog=CATALOG, gateway=api, policy=POLICY
    )


def paid_twice(ledger: Ledger, fake: FakeStripe, api: StripeAPI, account: str) -> tuple[str, Json]:
    """The same pack paid twice a minute apart; the first landed. Returns the second's
    PaymentIntent id and its ``checkout.session.completed`` (not applied yet)."""
    t0 = int(time.time()) - 300
    buyer = f"cus_{account}"
    first, _, _ = fake.create_paid_checkout(account, PRICE, AMOUNT, customer=buyer, created=t0)
    apply(ledger, envelope("checkout.session.completed", first), api)
    second, intent, _ = fake.create_paid_checkout(
        account, PRICE, AMOUNT, customer=buyer, created=t0 + 60
    )
    return str(intent["id"]), envelope("checkout.session.completed", second)


def state(ledger: Ledger, purchase: str) -> str:
    payment = ledger.payments.get(purchase)
    assert payment is not None
    return payment.state


def posts(fake: FakeStripe) -> list[tuple[int, bool, str | None]]:
    return [(c.status, c.replayed, c.idempotency_key) for c in fake.refund_calls]


def test_a_refund_call_that_failed_is_made_when_the_event_is_retried(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """A4: the duplicate's refund fails once (503); the worker's retry of the same event
    makes it, instead of reading the purchase's ``refunding`` state as "refund won"."""
    pi, event = paid_twice(ledger, fake, api, "acct_503")
    fake.fault("/v1/refunds", 1, status=503)
    with pytest.raises(PaymentProviderUnavailable):
        apply(ledger, event, api)
    assert state(ledger, pi) == "refunding" and fake.objects("refund") == []

    assert apply(ledger, event, api) == f"purchase {pi}: refund carried on"

    (refund,) = fake.objects("refund")
    assert (refund["payment_intent"], refund["amount"], refund["reason"]) == (
        pi,
        AMOUNT,
        "duplicate",
    )
    assert state(ledger, pi) == "refunded"
    assert ledger.balance("acct_503") == CREDITS  # the first pack only
    assert audit(ledger.db) == []


def test_a_500_saved_under_the_refund_key_moves_to_the_next_deterministic_key_after_a_look(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """A5: Stripe kept a 500 under the first key; it answers that 500 to every retry with
    it. The next call lists the charge's refunds first, then uses the next numbered key."""
    pi, event = paid_twice(ledger, fake, api, "acct_saved")
    fake.fault("/v1/refunds", 1, status=500, saved=True)
    with pytest.raises(PaymentProviderUnavailable):
        apply(ledger, event, api)
    with pytest.raises(PaymentProviderUnavailable):  # the fake keeps it, as Stripe does
        api.refund_payment(pi, amount=None, reason="duplicate", idempotency_key=refund_key(pi))
    payment = ledger.payments.get(pi)
    assert payment is not None and (payment.state, payment.refund_attempt) == ("refunding", 1)

    seen_before = len(fake.requests)
    apply(ledger, event, api)

    after = [(r.method, r.path) for r in fake.requests[seen_before:]]
    assert after.index(("GET", "/v1/refunds")) < after.index(("POST", "/v1/refunds"))
    (refund,) = fake.objects("refund")
    assert refund["metadata"]["refundry_key"] == refund_key(pi, 1) == f"refundry-refund-{pi}-1"
    assert posts(fake) == [
        (500, False, refund_key(pi)),
        (500, True, refund_key(pi)),
        (200, False, refund_key(pi, 1)),
    ]
    assert state(ledger, pi) == "refunded"
    reasons = [str(d["decision"]) for d in ledger.payments.decisions(pi)]
    assert reasons == ["duplicate", "refund", "refund_failed"]
    assert ledger.balance("acct_saved") == CREDITS
    assert audit(ledger.db) == []


def test_a_refund_made_despite_its_500_is_found_by_listing_and_never_asked_for_again(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """A5: a 500 is indeterminate: Stripe made the refund, then failed. The look at the
    charge's refunds finds it by its key; no call is made under the next key."""
    pi, event = paid_twice(ledger, fake, api, "acct_made")
    fake.fault("/v1/refunds", 1, status=500, after_effect=True)
    with pytest.raises(PaymentProviderUnavailable):
        apply(ledger, event, api)
    assert len(fake.objects("refund")) == 1

    apply(ledger, event, api)

    (refund,) = fake.objects("refund")
    assert refund["metadata"]["refundry_key"] == refund_key(pi)
    assert posts(fake) == [(500, False, refund_key(pi))]
    assert state(ledger, pi) == "refunded"
    assert audit(ledger.db) == []


def test_reconcile_carries_on_a_refund_whose_key_holds_a_saved_500(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """A5, the event's retries spent: the reconciliation makes the refund, once."""
    pi, event = paid_twice(ledger, fake, api, "acct_rc500")
    fake.fault("/v1/refunds", 1, status=500, saved=True)
    with pytest.raises(PaymentProviderUnavailable):
        apply(ledger, event, api)

    since = int(time.time()) - 86_400
    report = reconcile(ledger, api, catalog=CATALOG, policy=POLICY, since_s=since)
    assert [(d["purchase"], d["action"]) for d in report.decisions] == [(pi, "refund")]
    reconcile(ledger, api, catalog=CATALOG, policy=POLICY, since_s=since)

    (refund,) = fake.objects("refund")
    assert refund["metadata"]["refundry_key"] == refund_key(pi, 1)
    assert state(ledger, pi) == "refunded"
    assert audit(ledger.db) == []


def test_a_refund_that_keeps_failing_stays_refunding_and_raises_one_alert(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """Stripe answers 500 to every key: each attempt has its own numbered key, the purchase
    stays ``refunding`` (never dropped), and one alert says it is stuck."""
    pi, event = paid_twice(ledger, fake, api, "acct_stuck")
    fake.fault("/v1/refunds", None, method="POST", status=500, saved=True)
    for _ in range(STUCK_AFTER_ATTEMPTS + 2):
        with pytest.raises(PaymentProviderUnavailable):
            apply(ledger, event, api)

    keys = [key for _, _, key in posts(fake)]
    assert keys == [refund_key(pi, n) for n in range(STUCK_AFTER_ATTEMPTS + 2)]
    assert fake.objects("refund") == []
    assert state(ledger, pi) == "refunding"
    alerts = [d for d in ledger.payments.decisions(pi) if d["decision"] == "alert"]
    assert len(alerts) == 1 and "refund not made" in str(alerts[0]["reason"])
