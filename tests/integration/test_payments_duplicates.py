"""Of two identical purchases by the same buyer within the duplicate window, the later payment
is the one refunded, whatever order their events arrive in; a guest checkout (no Stripe
customer) is told by its account. On SQLite and PostgreSQL, against the local fake Stripe."""

from __future__ import annotations

import time
from typing import Any

import pytest

from handlers.packs import PaymentPolicy
from handlers.payments import apply_payment_event
from ledger import Ledger, audit
from providers.stripe import parse_event
from providers.stripe_api import PaymentProviderUnavailable, StripeAPI
from tests.support.fake_stripe import FakeStripe
from tests.support.pack_catalog import AMOUNT, CATALOG, CREDITS, PRICE
from tests.support.stripe_events import envelope, pack_entries

POLICY = PaymentPolicy(duplicate_window_ms=600_000)
Json = dict[str, Any]


def apply(ledger: Ledger, session: Json, api: StripeAPI) -> str:
    event = envelope("checkout.session.completed", session)
    return apply_payment_event(
        ledger, parse_event(event), catalog=CATALOG, gateway=api, policy=POLICY
    )


def bought_twice(fake: FakeStripe, account: str, customer: str | None) -> tuple[Json, Json]:
    """The same pack bought twice by one buyer, a minute apart: (first, later) sessions."""
    fake.add_price(PRICE, AMOUNT)
    t0 = int(time.time()) - 300
    first, later = (
        fake.checkout(
            [(PRICE, 1)], client_reference_id=account, customer=customer, created=t0 + 60 * n
        )
        for n in range(2)
    )
    return first, later


def state(ledger: Ledger, session: Json) -> str | None:
    payment = ledger.payments.get(session["payment_intent"])
    return None if payment is None else payment.state


def refunds(fake: FakeStripe) -> list[tuple[str, int, str]]:
    return [(r["payment_intent"], r["amount"], r["reason"]) for r in fake.objects("refund")]


def test_a_duplicate_pair_delivered_newest_first_refunds_the_later_payment(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """A10: the later payment's events come first and its pack lands; when the earlier one's
    come, the earlier lands and the later is refunded, its credits clawed back."""
    first, later = bought_twice(fake, "acct_order", "cus_order")
    apply(ledger, later, api)
    assert ledger.balance("acct_order") == CREDITS

    said = apply(ledger, first, api)

    pi = first["payment_intent"]
    assert said == f"purchase {pi}: granted, its later duplicate refunded"
    assert (state(ledger, first), state(ledger, later)) == ("granted", "refunded")
    assert refunds(fake) == [(later["payment_intent"], AMOUNT, "duplicate")]
    assert ledger.balance("acct_order") == CREDITS
    assert pack_entries(ledger_url, later["payment_intent"]) == [
        ("grant", CREDITS, "acct_order"),
        ("clawback", -CREDITS, "acct_order"),
    ]
    for session in (first, later, first):  # redelivered: nothing more
        apply(ledger, session, api)
    assert len(fake.objects("refund")) == 1 and ledger.balance("acct_order") == CREDITS
    later_payment = ledger.payments.get(later["payment_intent"])
    assert later_payment is not None and later_payment.duplicate_of == pi
    assert audit(ledger.db) == []


def test_the_later_payments_refund_is_carried_on_by_a_retry_of_the_earlier_ones_event(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """A10 with A4: the later payment's refund fails once; the retried event of the earlier
    payment carries it on."""
    first, later = bought_twice(fake, "acct_order503", "cus_order503")
    apply(ledger, later, api)
    fake.fault("/v1/refunds", 1, method="POST", status=503)
    with pytest.raises(PaymentProviderUnavailable):
        apply(ledger, first, api)
    assert (state(ledger, first), state(ledger, later)) == ("granted", "refunding")

    apply(ledger, first, api)

    assert (state(ledger, first), state(ledger, later)) == ("granted", "refunded")
    assert refunds(fake) == [(later["payment_intent"], AMOUNT, "duplicate")]
    assert ledger.balance("acct_order503") == CREDITS
    assert audit(ledger.db) == []


@pytest.mark.parametrize("newest_first", [False, True], ids=["in_order", "newest_first"])
def test_a_guest_checkout_paid_twice_is_a_duplicate_told_by_its_account(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI, newest_first: bool
) -> None:
    """A9: Checkout in payment mode makes no Customer for a guest (``customer`` null); the
    same account paying the same pack twice in a minute is still a duplicate."""
    first, later = bought_twice(fake, "acct_guest", None)
    assert fake.get(later["payment_intent"])["customer"] is None
    for session in (later, first) if newest_first else (first, later):
        apply(ledger, session, api)

    assert (state(ledger, first), state(ledger, later)) == ("granted", "refunded")
    assert refunds(fake) == [(later["payment_intent"], AMOUNT, "duplicate")]
    assert ledger.balance("acct_guest") == CREDITS
    assert audit(ledger.db) == []


def test_two_guests_of_different_accounts_buying_the_same_pack_both_land(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    fake.add_price(PRICE, AMOUNT)
    t0 = int(time.time()) - 300
    for n, account in enumerate(("acct_guest_a", "acct_guest_b")):
        session = fake.checkout([(PRICE, 1)], client_reference_id=account, created=t0 + n)
        apply(ledger, session, api)
    assert ledger.balance("acct_guest_a") == ledger.balance("acct_guest_b") == CREDITS
    assert fake.objects("refund") == []


def test_a_duplicate_window_of_0_turns_the_duplicate_rule_off(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    fake.add_price(PRICE, AMOUNT)
    t0 = int(time.time()) - 300
    off = PaymentPolicy(duplicate_window_ms=0)
    for _ in range(2):  # the same pack, by the same buyer, in the same second
        session = fake.checkout([(PRICE, 1)], client_reference_id="acct_d0", created=t0)
        event = parse_event(envelope("checkout.session.completed", session))
        apply_payment_event(ledger, event, catalog=CATALOG, gateway=api, policy=off)
    assert ledger.balance("acct_d0") == 2 * CREDITS
    assert fake.objects("refund") == []
