"""What on-call engineers read stays true: a dead letter whose event was applied after all (a
Stripe outage longer than the retries, then the inbox sweep) is marked resolved in the same
transaction as the event's effect and no longer listed; a reconciliation raises one alert
per cause per run, however many of Stripe's objects name the purchase. On SQLite and
PostgreSQL."""

from __future__ import annotations

import time

from handlers.packs import PackCatalog
from handlers.payments import apply_payment_event
from handlers.reconcile import reconcile
from ledger import Ledger
from providers.stripe import parse_event
from providers.stripe_api import PaymentProviderUnavailable, StripeAPI
from tests.support.fake_stripe import FakeStripe
from tests.support.pack_catalog import AMOUNT, CATALOG, COMPLETE, CREDITS, PRICE


def dead_letter(ledger: Ledger, inbox_id: str) -> None:
    """What the worker writes when an event's last retry failed on a transient error."""
    ledger.dead.record(
        message_id=inbox_id,
        actor="process_payment",
        queue="payments",
        reason="PaymentProviderUnavailable status=503",
        error_class="PaymentProviderUnavailable",
        message="{}",
        inbox_id=inbox_id,
        permanent=False,
    )


def test_a_dead_letter_whose_event_is_applied_later_is_resolved_and_no_longer_listed(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """D: the session could not be read from Stripe for longer than the retries; the event
    stayed pending, and once Stripe is back its application resolves the dead letter."""
    session, _, _ = fake.create_paid_checkout("acct_dl", PRICE, AMOUNT, customer="cus_dl")
    (event,) = fake.events("checkout.session.completed", about=session["id"])
    inbox_id = ledger.inbox.record(id="in_dl", kind="payment", provider="stripe", payload=event).id
    fake.fault("/v1/checkout/sessions/*", None, status=503)
    try:
        apply_payment_event(
            ledger,
            parse_event(event),
            catalog=CATALOG,
            gateway=api,
            policy=COMPLETE,
            inbox_id=inbox_id,
        )
    except PaymentProviderUnavailable:
        dead_letter(ledger, inbox_id)
    assert [d["message_id"] for d in ledger.dead.all()] == [inbox_id]
    with fake._lock:
        fake._faults.clear()  # Stripe is back

    apply_payment_event(  # the inbox sweep's delivery
        ledger, parse_event(event), catalog=CATALOG, gateway=api, policy=COMPLETE, inbox_id=inbox_id
    )

    assert ledger.balance("acct_dl") == CREDITS
    assert ledger.dead.all() == []
    kept = ledger.dead.get(inbox_id)
    assert kept is not None and kept["resolved_at_ms"] is not None


def test_a_dead_letter_written_after_its_event_was_applied_is_resolved_at_once(
    ledger: Ledger,
) -> None:
    """D: another delivery applied the event while this one was failing its last retry."""
    ledger.inbox.record(id="in_late", kind="payment", provider="stripe", payload={})
    ledger.inbox.mark_processed("in_late")
    dead_letter(ledger, "in_late")
    assert ledger.dead.all() == []
    kept = ledger.dead.get("in_late")
    assert kept is not None and kept["resolved_at_ms"] is not None


def test_a_still_pending_event_keeps_its_dead_letter_listed(ledger: Ledger) -> None:
    ledger.inbox.record(id="in_open", kind="payment", provider="stripe", payload={})
    dead_letter(ledger, "in_open")
    assert [d["message_id"] for d in ledger.dead.all()] == ["in_open"]


def test_reconcile_alerts_once_per_cause_per_run_for_a_price_outside_the_catalog(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """D: the session and its PaymentIntent both name a purchase of a price not sold as a
    pack: one alert, naming the price."""
    fake.add_price("price_not_sold", 700)
    session = fake.checkout(
        [("price_not_sold", 1)], client_reference_id="acct_ns", created=int(time.time()) - 7200
    )
    report = reconcile(
        ledger,
        api,
        catalog=PackCatalog({PRICE: CREDITS}),
        policy=COMPLETE,
        since_s=int(time.time()) - 86_400,
    )
    alerts = [d for d in report.decisions if d["action"] == "alert"]
    assert len(alerts) == 1
    assert alerts[0]["purchase"] == session["payment_intent"]
    assert "price_not_sold" in alerts[0]["why"]
    assert ledger.balance("acct_ns") == 0
