"""Reconciliation: a paid pack whose webhook never came is found at Stripe (the local fake,
over HTTP) and settled once past the landing window — completed or refunded by policy —
even by two sweeps at once; a dry run only reports; a refund whose answer was lost is
confirmed, not repeated; ``audit`` flags an unlanded pack until it is settled. On SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from handlers.packs import PackCatalog, PaymentPolicy
from handlers.payments import apply_payment_event
from handlers.purchases import observe
from handlers.reconcile import Reconciliation, reconcile
from ledger import Ledger, audit
from ledger.payments import refund_key
from providers.stripe import CheckoutSession, parse_event
from providers.stripe_api import PaymentProviderUnavailable, StripeAPI
from tests.support.fake_stripe import FakeStripe
from tests.support.stripe_events import envelope, pack_entries, refunded_once_as_unlanded

KEY = "sk_test_refundry_reconcile"
PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
CATALOG = PackCatalog({PRICE: CREDITS})
WINDOW_MS = 3_600_000
COMPLETE = PaymentPolicy(landing_window_ms=WINDOW_MS, unlanded_action="complete")
REFUND = PaymentPolicy(landing_window_ms=WINDOW_MS, unlanded_action="refund")
Json = dict[str, Any]


def ago(seconds: int) -> int:
    return int(time.time()) - seconds


def sweep(ledger: Ledger, api: StripeAPI, policy: PaymentPolicy, **kw: Any) -> Reconciliation:
    return reconcile(ledger, api, catalog=CATALOG, policy=policy, since_s=ago(86_400), **kw)


def never_delivered(fake: FakeStripe, account: str, age_s: int = 7200) -> str:
    """A pack paid ``age_s`` ago at Stripe whose webhooks never reached Refundry."""
    _, intent, _ = fake.create_paid_checkout(
        account, PRICE, AMOUNT, customer=f"cus_{account}", created=ago(age_s)
    )
    return str(intent["id"])


def received_not_granted(ledger: Ledger, session: Json, api: StripeAPI) -> str:
    """The session's webhook was received and merged, then the worker died before granting."""
    event = parse_event(envelope("checkout.session.completed", session))
    assert isinstance(event, CheckoutSession)
    seen = observe(ledger, event, CATALOG, api)
    assert seen is not None
    return seen.purchase_key


def actions(report: Reconciliation) -> list[tuple[str, str]]:
    return [(d["purchase"], d["action"]) for d in report.decisions]


def kinds(ledger: Ledger, purchase: str) -> list[str]:
    return [str(d["decision"]) for d in ledger.payments.decisions(purchase)]


def test_a_paid_session_whose_webhook_never_arrived_is_completed_once(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    pi = never_delivered(fake, "acct_rc")
    assert actions(sweep(ledger, api, COMPLETE)) == [(pi, "complete")]
    assert actions(sweep(ledger, api, COMPLETE)) == []
    assert ledger.balance("acct_rc") == CREDITS
    assert pack_entries(ledger_url, pi) == [("grant", CREDITS, "acct_rc")]
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "granted"
    assert kinds(ledger, pi) == ["grant"]
    assert fake.refund_calls == []
    assert audit(ledger.db, landing_window_ms=0) == []


def test_with_the_refund_action_an_unlanded_pack_is_refunded_once_and_never_granted(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    pi = never_delivered(fake, "acct_rr")
    assert actions(sweep(ledger, api, REFUND)) == [(pi, "refund")]
    assert actions(sweep(ledger, api, REFUND)) == []
    refunded_once_as_unlanded(fake, pi, AMOUNT)
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "refunded"
    assert ledger.balance("acct_rr") == 0 and pack_entries(ledger_url, pi) == []
    # A late webhook of the refunded purchase grants nothing.
    session = next(s for s in fake.objects("checkout.session") if s["payment_intent"] == pi)
    apply_payment_event(
        ledger,
        parse_event(envelope("checkout.session.completed", session)),
        catalog=CATALOG,
        gateway=api,
        policy=REFUND,
    )
    assert ledger.balance("acct_rr") == 0 and pack_entries(ledger_url, pi) == []
    assert kinds(ledger, pi) == ["refund"]
    assert audit(ledger.db, landing_window_ms=0) == []


@pytest.mark.parametrize("policy", [COMPLETE, REFUND], ids=["complete", "refund"])
def test_two_reconciliations_at_once_still_grant_or_refund_once(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, policy: PaymentPolicy
) -> None:
    pis = [never_delivered(fake, f"acct_cc{n}") for n in range(3)]
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with StripeAPI(KEY, base=fake.url, max_network_retries=0) as own:
                start.wait(timeout=10)
                sweep(ledger, own, policy)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == [] and not any(t.is_alive() for t in threads)
    for n, pi in enumerate(pis):
        payment = ledger.payments.get(pi)
        assert payment is not None
        if policy is COMPLETE:
            assert payment.state == "granted"
            assert pack_entries(ledger_url, pi) == [("grant", CREDITS, f"acct_cc{n}")]
            assert ledger.balance(f"acct_cc{n}") == CREDITS
        else:
            assert payment.state == "refunded" and pack_entries(ledger_url, pi) == []
            assert ledger.balance(f"acct_cc{n}") == 0
            assert {
                c.idempotency_key for c in fake.refund_calls if c.params["payment_intent"] == pi
            } == {refund_key(pi)}
    assert len(fake.objects("refund")) == (0 if policy is COMPLETE else len(pis))
    assert audit(ledger.db, landing_window_ms=0) == []


def test_a_dry_run_reports_a_session_never_delivered_and_changes_nothing(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    pi = never_delivered(fake, "acct_dry")
    report = sweep(ledger, api, COMPLETE, dry_run=True)
    assert actions(report) == [(pi, "complete")]
    assert ledger.payments.get(pi) is None
    assert ledger.balance("acct_dry") == 0


def test_a_dry_run_reports_an_unlanded_pack_and_changes_nothing(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    session, _, _ = fake.create_paid_checkout("acct_dry2", PRICE, AMOUNT, created=ago(7200))
    pi = received_not_granted(ledger, session, api)
    for policy in (COMPLETE, REFUND):
        report = sweep(ledger, api, policy, dry_run=True)
        assert actions(report) == [(pi, policy.unlanded_action)]
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "paid"
    assert kinds(ledger, pi) == [] and pack_entries(ledger_url, pi) == []
    assert fake.refund_calls == [] and ledger.balance("acct_dry2") == 0


def test_a_paid_session_within_the_landing_window_is_left_alone(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    pi = never_delivered(fake, "acct_young", age_s=60)
    for policy in (COMPLETE, REFUND):
        report = sweep(ledger, api, policy)
        assert report.seen == 2 and report.decisions == []  # its session and its intent
    assert ledger.balance("acct_young") == 0 and pack_entries(ledger_url, pi) == []
    assert fake.refund_calls == []
    assert kinds(ledger, pi) == []


def test_a_refund_whose_answer_was_lost_is_confirmed_not_repeated_by_the_next_sweep(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    pi = never_delivered(fake, "acct_lost")
    fake.fault("/v1/refunds", 1, method="POST", hang_s=10.0, after_effect=True)
    impatient = StripeAPI(KEY, base=fake.url, read_timeout_s=0.5, max_network_retries=0)
    with impatient:
        lost = sweep(ledger, impatient, REFUND)
    # The sweep goes on past the purchase it could not settle, and says so.
    assert actions(lost) == [(pi, "refund"), (pi, "alert")]
    assert lost.decisions[1]["why"].startswith(PaymentProviderUnavailable.__name__)
    assert len(fake.objects("refund")) == 1  # Stripe made it; Refundry never heard
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "refunding"

    # The policy changed meanwhile: a refund already started is still finished, not granted.
    report = sweep(ledger, api, COMPLETE)
    assert actions(report) == [(pi, "refund")]
    (refund,) = fake.objects("refund")
    calls = fake.refund_calls
    assert [(c.status, c.replayed) for c in calls] == [(0, False), (200, True)]
    assert {c.idempotency_key for c in calls} == {refund_key(pi)}
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "refunded"
    assert kinds(ledger, pi) == ["refund", "alert"]
    assert ledger.balance("acct_lost") == 0 and pack_entries(ledger_url, pi) == []
    assert actions(sweep(ledger, api, COMPLETE)) == []
    assert len(fake.refund_calls) == 2
    assert refund["id"] and audit(ledger.db, landing_window_ms=0) == []


def test_reconcile_never_refunds_a_payment_that_bought_no_pack(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """A PaymentIntent that is not a pack purchase (an invoice, another product) is listed
    too: it must not be refunded, nor left as an unlanded pack."""
    other = fake.pay_without_checkout(4900)
    assert other["status"] == "succeeded"
    later = int(time.time() + 2 * WINDOW_MS / 1000) * 1000
    sweep(ledger, api, REFUND, at_ms=later)
    assert fake.objects("refund") == []
    assert [v for v in audit(ledger.db, landing_window_ms=0) if v.invariant == 4] == []


def test_audit_reports_a_paid_pack_unlanded_past_the_window_until_it_is_reconciled(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    window = PaymentPolicy(landing_window_ms=60_000)
    old_session, old, _ = fake.create_paid_checkout("acct_a", PRICE, AMOUNT, created=ago(600))
    young_session, _, _ = fake.create_paid_checkout("acct_b", PRICE, AMOUNT, created=ago(5))
    for session in (old_session, young_session):  # paid and merged, not landed yet
        received_not_granted(ledger, session, api)
    found = audit(ledger.db, landing_window_ms=60_000)
    assert [(v.invariant, v.check, v.detail["purchase_key"]) for v in found] == [
        (4, "pack_unlanded_past_window", old["id"])
    ]
    assert found[0].detail["paid_at_ms"] == old_session["created"] * 1000
    assert audit(ledger.db) == []  # the default window (1 h) has not passed for either

    assert actions(sweep(ledger, api, window)) == [(old["id"], "complete")]
    assert ledger.balance("acct_a") == CREDITS
    assert ledger.balance("acct_b") == 0  # still within its window: left alone
    assert audit(ledger.db, landing_window_ms=60_000) == []


def test_reconcile_does_not_complete_a_pack_whose_payment_stripe_already_refunded(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """Support refunded the payment in the Dashboard before any webhook of it landed; the
    session still says ``paid`` and the intent ``succeeded``, but the money is back."""
    pi = never_delivered(fake, "acct_gone")
    api.refund_payment(pi, amount=None, reason="customer_request", idempotency_key="support")
    sweep(ledger, api, COMPLETE)
    assert ledger.balance("acct_gone") == 0
    assert len(fake.objects("refund")) == 1


def test_a_purchase_whose_refund_stripe_refuses_does_not_stop_the_sweep(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """The oldest unlanded purchase cannot be refunded (its charge was refunded outside
    Refundry): the sweep must still settle the purchases after it, on every run."""
    stuck = never_delivered(fake, "acct_stuck", age_s=9000)
    api.refund_payment(stuck, amount=None, reason="customer_request", idempotency_key="support")
    after = never_delivered(fake, "acct_after", age_s=7200)
    for _ in range(2):
        sweep(ledger, api, REFUND)
    payment = ledger.payments.get(after)
    assert payment is not None and payment.state == "refunded"
    assert [r["payment_intent"] for r in fake.objects("refund")].count(after) == 1
