"""Reconciliation's decisions, each kind as it must hold: a paid purchase whose pack cannot be
known (a price outside the catalog) is recorded with its refusal, alerted once and settled by
the unlanded-pack policy; a dry run shows the decisions the real run takes, reading the same
facts and changing nothing; a purchase left undecided because Stripe failed is alerted once
per run and said to be undecided. Stripe is the local fake, over HTTP; on SQLite and
PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import pytest

from handlers.packs import PackCatalog, PackUnknown, PaymentPolicy
from handlers.payments import apply_payment_event
from handlers.reconcile import Reconciliation, reconcile
from ledger import Ledger, audit
from providers.stripe import parse_event
from providers.stripe_api import StripeAPI
from tests.support.fake_stripe import FakeStripe
from tests.support.stripe_events import pack_entries, refunded_once_as_unlanded

PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
OUTSIDE = "price_notcat"
CATALOG = PackCatalog({PRICE: CREDITS})
WINDOW_MS = 3_600_000
COMPLETE = PaymentPolicy(landing_window_ms=WINDOW_MS, unlanded_action="complete")
REFUND = PaymentPolicy(landing_window_ms=WINDOW_MS, unlanded_action="refund")
POLICIES = pytest.mark.parametrize("policy", [COMPLETE, REFUND], ids=["complete", "refund"])
Json = dict[str, Any]


def ago(seconds: int) -> int:
    return int(time.time()) - seconds


def sweep(ledger: Ledger, api: StripeAPI, policy: PaymentPolicy, **kw: Any) -> Reconciliation:
    return reconcile(ledger, api, catalog=CATALOG, policy=policy, since_s=ago(86_400), **kw)


def actions(report: Reconciliation) -> list[tuple[str, str]]:
    return [(d["purchase"], d["action"]) for d in report.decisions]


def decisions(ledger: Ledger, purchase: str) -> list[tuple[str, str]]:
    return [(str(d["decision"]), str(d["reason"])) for d in ledger.payments.decisions(purchase)]


def outside_the_catalog(fake: FakeStripe, account: str, *, with_pack: bool) -> str:
    """A purchase paid two hours ago of a price outside the catalog (with a catalog pack
    beside it when ``with_pack``); no webhook of it reached Refundry."""
    fake.add_price(PRICE, AMOUNT)
    fake.add_price(OUTSIDE, 700)
    items = [(PRICE, 1), (OUTSIDE, 1)] if with_pack else [(OUTSIDE, 1)]
    session = fake.checkout(items, client_reference_id=account, created=ago(7200))
    return str(session["payment_intent"])


def ledger_rows(ledger: Ledger, purchase: str) -> tuple[Any, ...]:
    """Everything the ledger holds about a purchase, to tell that nothing changed."""
    return (ledger.payments.get(purchase), ledger.payments.decisions(purchase))


# -- a pack that cannot be known --------------------------------------------------------------


@pytest.mark.parametrize("with_pack", [True, False], ids=["beside-a-pack", "alone"])
def test_pack_unknown_refused_by_the_worker_is_recorded_as_a_decision_once(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI, with_pack: bool
) -> None:
    pi = outside_the_catalog(fake, "acct_pu", with_pack=with_pack)
    for event in fake.events("checkout.session.completed") + fake.events(
        "payment_intent.succeeded"
    ):
        with pytest.raises(PackUnknown):
            apply_payment_event(
                ledger, parse_event(event), catalog=CATALOG, gateway=api, policy=COMPLETE
            )
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "paid"
    assert payment.credits is None and payment.account_id == "acct_pu"
    refused = [d for d in decisions(ledger, pi) if d[0] == "refused"]
    assert len(refused) == 1 and OUTSIDE in refused[0][1]  # once, naming the price
    assert ledger.balance("acct_pu") == 0


def test_pack_unknown_under_complete_is_alerted_once_with_its_decision(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    pi = outside_the_catalog(fake, "acct_pc", with_pack=True)
    first = sweep(ledger, api, COMPLETE)
    assert actions(first) == [(pi, "alert")]
    assert OUTSIDE in first.decisions[0]["why"]
    for _ in range(2):  # the same cause is not alerted again
        assert actions(sweep(ledger, api, COMPLETE)) == []
    kinds = [kind for kind, _ in decisions(ledger, pi)]
    assert kinds == ["refused", "alert"]
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "paid"  # a person decides
    assert ledger.balance("acct_pc") == 0 and pack_entries(ledger_url, pi) == []
    assert fake.refund_calls == []


def test_pack_unknown_under_refund_is_refunded_once_by_the_unlanded_pack_refund(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    pi = outside_the_catalog(fake, "acct_pr", with_pack=True)
    assert actions(sweep(ledger, api, REFUND)) == [(pi, "refund")]
    assert actions(sweep(ledger, api, REFUND)) == []
    refunded_once_as_unlanded(fake, pi, AMOUNT + 700)
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "refunded"
    assert [kind for kind, _ in decisions(ledger, pi)] == ["refused", "refund"]
    assert ledger.balance("acct_pr") == 0 and pack_entries(ledger_url, pi) == []
    assert audit(ledger.db, landing_window_ms=0) == []


# -- the dry run shows the real run's decisions ------------------------------------------------


@POLICIES
def test_dry_run_shows_the_decisions_the_real_run_takes(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI, policy: PaymentPolicy
) -> None:
    unknown = outside_the_catalog(fake, "acct_d1", with_pack=False)
    _, plain, _ = fake.create_paid_checkout("acct_d2", PRICE, AMOUNT, created=ago(7200))
    _, refunded, _ = fake.create_paid_checkout("acct_d3", PRICE, AMOUNT, created=ago(7200))
    fake.refund(str(refunded["id"]))  # in the Dashboard, before the pack landed
    _, disputed, charge = fake.create_paid_checkout("acct_d4", PRICE, AMOUNT, created=ago(7200))
    fake.dispute(str(charge["id"]))
    keys = [unknown, str(plain["id"]), str(refunded["id"]), str(disputed["id"])]
    before = [ledger_rows(ledger, k) for k in keys]
    posts_before = [r for r in fake.requests if r.method == "POST"]

    preview = sweep(ledger, api, policy, dry_run=True)

    assert [ledger_rows(ledger, k) for k in keys] == before  # nothing written
    assert [r for r in fake.requests if r.method == "POST"] == posts_before  # nothing changed
    real = sweep(ledger, api, policy)
    assert sorted(preview.decisions, key=str) == sorted(real.decisions, key=str)
    by_key = dict(actions(real))
    assert by_key[str(refunded["id"])] == "refunded_at_provider"
    assert by_key[str(disputed["id"])] == "wait"
    assert by_key[unknown] == ("alert" if policy is COMPLETE else "refund")
    assert by_key[str(plain["id"])] == policy.unlanded_action
    # Once settled, the dry run shows what the next real run does: nothing for these.
    again = sweep(ledger, api, policy, dry_run=True)
    assert sorted(again.decisions, key=str) == sorted(sweep(ledger, api, policy).decisions, key=str)


# -- Stripe fails: undecided, alerted once ------------------------------------------------------


def test_stripe_failure_leaves_the_purchase_undecided_with_one_alert_per_run(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    prices = [f"price_item{n:02d}" for n in range(12)]  # more line items than one page holds
    for price in prices:
        fake.add_price(price, 100)
    items = [(price, 1) for price in prices]
    session = fake.checkout(items, client_reference_id="acct_out", created=ago(7200))
    pi = str(session["payment_intent"])
    fake.fault("/v1/checkout/sessions/*/line_items", None, status=500)
    catalog = PackCatalog(dict.fromkeys(prices, 10))
    for _ in range(2):
        report = reconcile(ledger, api, catalog=catalog, policy=COMPLETE, since_s=ago(86_400))
        alerts = [d for d in report.decisions if d["action"] == "alert"]
        assert [d["purchase"] for d in alerts] == [pi]
        assert alerts[0]["why"].startswith("PaymentProviderUnavailable")
        assert report.undecided == [pi]
    assert ledger.balance("acct_out") == 0


def test_pack_unknown_alerted_completes_once_its_price_joins_the_catalog(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    pi = outside_the_catalog(fake, "acct_pj", with_pack=True)
    assert actions(sweep(ledger, api, COMPLETE)) == [(pi, "alert")]
    wider = PackCatalog({PRICE: CREDITS, OUTSIDE: 200})  # the person decided: it is a pack
    report = reconcile(ledger, api, catalog=wider, policy=COMPLETE, since_s=ago(86_400))
    assert actions(report) == [(pi, "complete")]
    assert ledger.balance("acct_pj") == CREDITS + 200
    assert pack_entries(ledger_url, pi) == [("grant", CREDITS + 200, "acct_pj")]
