"""Disputes as reconciliation and refunds meet them: a pack whose chargeback was lost (every
webhook lost too) is never completed; a chargeback still open holds the decision until it
closes; a refund Stripe refuses because the charge is under chargeback (``charge_disputed``)
is given up with one alert instead of staying ``refunding`` forever. On SQLite and
PostgreSQL, against the local fake Stripe over HTTP."""

from __future__ import annotations

import time
from typing import Any

from handlers.packs import PaymentPolicy
from handlers.payments import apply_payment_event
from handlers.reconcile import Reconciliation, reconcile
from ledger import Ledger, audit
from providers.stripe import parse_event
from providers.stripe_api import StripeAPI
from tests.support.fake_stripe import FakeStripe
from tests.support.pack_catalog import AMOUNT, CATALOG, COMPLETE, CREDITS, PRICE, REFUND
from tests.support.stripe_events import envelope, pack_entries

Json = dict[str, Any]


def sweep(ledger: Ledger, api: StripeAPI, policy: PaymentPolicy) -> list[tuple[str, str]]:
    since = int(time.time()) - 86_400
    report: Reconciliation = reconcile(ledger, api, catalog=CATALOG, policy=policy, since_s=since)
    return [(d["purchase"], d["action"]) for d in report.decisions]


def paid_two_hours_ago(fake: FakeStripe, account: str) -> tuple[str, str]:
    """A pack paid two hours ago whose webhooks never arrived: (PaymentIntent, Charge)."""
    _, intent, charge = fake.create_paid_checkout(
        account, PRICE, AMOUNT, customer=f"cus_{account}", created=int(time.time()) - 7200
    )
    return str(intent["id"]), str(charge["id"])


def state(ledger: Ledger, purchase: str) -> str | None:
    payment = ledger.payments.get(purchase)
    return None if payment is None else payment.state


def test_complete_does_not_grant_a_pack_whose_chargeback_was_lost(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """A3: the charge was disputed and the dispute lost: the money is gone. Reconciliation
    reads the charge's disputes as well as its refunds before completing."""
    pi, charge = paid_two_hours_ago(fake, "acct_cb")
    fake.dispute(charge, "lost")

    assert sweep(ledger, api, COMPLETE) == [(pi, "refunded_at_provider")]

    assert ledger.balance("acct_cb") == 0 and pack_entries(ledger_url, pi) == []
    assert state(ledger, pi) == "refunded"
    assert sweep(ledger, api, COMPLETE) == []
    # The lost dispute's own webhook, late, takes nothing more: same id, same reversal.
    (closed,) = fake.events("charge.dispute.closed")
    apply_payment_event(ledger, parse_event(closed), catalog=CATALOG, gateway=api, policy=COMPLETE)
    assert ledger.balance("acct_cb") == 0
    assert audit(ledger.db) == []


def test_a_pack_whose_chargeback_was_lost_in_part_lands_its_share(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """A3: a dispute lost for half the charge: the pack lands, less the lost half's share."""
    pi, charge = paid_two_hours_ago(fake, "acct_cb_half")
    fake.dispute(charge, "lost", amount=AMOUNT // 2)

    assert sweep(ledger, api, COMPLETE) == [(pi, "complete")]

    assert ledger.balance("acct_cb_half") == CREDITS - CREDITS * (AMOUNT // 2) // AMOUNT
    assert audit(ledger.db) == []


def test_an_open_chargeback_holds_reconciliation_until_it_closes(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """B1: Stripe refuses to refund a charge under chargeback; reconciliation neither
    refunds nor leaves it ``refunding``: it waits, and settles once the dispute is decided."""
    pi, charge = paid_two_hours_ago(fake, "acct_wait")
    dispute = fake.dispute(charge)

    assert sweep(ledger, api, REFUND) == [(pi, "wait")]
    assert sweep(ledger, api, REFUND) == [(pi, "wait")]
    assert fake.refund_calls == [] and state(ledger, pi) == "paid"
    waits = [d for d in ledger.payments.decisions(pi) if d["decision"] == "wait"]
    assert len(waits) == 1  # noted once, reported every run

    fake.close_dispute(dispute["id"], "lost")
    assert sweep(ledger, api, REFUND) == [(pi, "refunded_at_provider")]
    assert fake.refund_calls == [] and state(ledger, pi) == "refunded"
    assert audit(ledger.db) == []


def test_a_refund_refused_under_chargeback_is_given_up_with_one_alert(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """B1: an early fraud warning on a pack whose charge is already under chargeback: Stripe
    answers ``charge_disputed``. The purchase goes back to ``granted`` (not ``refunding``
    forever), one alert says why, and the event is applied, not dead-lettered; the won
    dispute then leaves the pack where it is."""
    session, intent, charge = fake.create_paid_checkout(
        "acct_efw", PRICE, AMOUNT, customer="cus_efw"
    )

    def apply(event: Json) -> str:
        return apply_payment_event(
            ledger, parse_event(event), catalog=CATALOG, gateway=api, policy=COMPLETE
        )

    apply(envelope("checkout.session.completed", session))
    dispute = fake.dispute(charge["id"])
    (warning,) = [fake.early_fraud_warning(charge["id"])]
    for _ in range(2):
        apply(envelope("radar.early_fraud_warning.created", warning))

    pi = str(intent["id"])
    assert state(ledger, pi) == "granted" and fake.objects("refund") == []
    assert [c.status for c in fake.refund_calls] == [400, 400]
    decisions = [str(d["decision"]) for d in ledger.payments.decisions(pi)]
    assert decisions.count("refund_refused") == 2 and decisions.count("alert") == 1
    assert ledger.balance("acct_efw") == CREDITS

    fake.close_dispute(dispute["id"], "won")
    for event in fake.events("charge.dispute.closed", about=dispute["id"]):
        apply(event)
    assert state(ledger, pi) == "granted" and ledger.balance("acct_efw") == CREDITS
    assert audit(ledger.db) == []


def test_an_unlanded_pack_whose_chargeback_closed_lands_instead_of_a_refund_stripe_refuses(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """Kind: a decision Stripe can never carry out, made again every run. Under ``refund``,
    an unlanded pack whose chargeback is closed (won: the money is the merchant's) cannot be
    refunded: Stripe refuses any refund of a charged-back charge (``charge_disputed``). Asked
    every run, each refusal under a new key, it would stay unlanded past the window for ever.
    The dispute has decided where the money is: the pack lands (less a lost part's share)."""
    pi, charge = paid_two_hours_ago(fake, "acct_cb_won")
    dispute = fake.dispute(charge)
    fake.close_dispute(dispute["id"], "won")

    assert sweep(ledger, api, REFUND) == [(pi, "complete")]
    assert sweep(ledger, api, REFUND) == []
    assert fake.refund_calls == [] and state(ledger, pi) == "granted"
    assert ledger.balance("acct_cb_won") == CREDITS
    assert [kind for kind, _, _ in pack_entries(ledger_url, pi)] == ["grant"]
    assert audit(ledger.db, landing_window_ms=3_600_000) == []
