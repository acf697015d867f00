"""Money that goes back takes its credits with it, exactly once: a duplicate charge is refunded
instead of granted, a refund or a lost dispute claws back its share of the pack (even below
zero, flagged), an early fraud warning refunds and revokes, a failed refund raises an alert,
and a rerun after Stripe refunded but the answer was lost confirms the same refund. On SQLite
and PostgreSQL, the refunds made over HTTP at the local fake Stripe."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from handlers.packs import PackCatalog, PaymentPolicy
from handlers.payments import apply_payment_event
from ledger import Ledger, audit
from ledger.payments import refund_key
from providers.stripe import parse_event
from providers.stripe_api import PaymentProviderUnavailable, StripeAPI
from tests.support.fake_stripe import FakeStripe
from tests.support.stripe_events import envelope, pack_entries

KEY = "sk_test_refundry_refunds"
PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
ODD_PRICE, ODD_AMOUNT, ODD_CREDITS = "price_pack333", 1000, 333
CATALOG = PackCatalog({PRICE: CREDITS, ODD_PRICE: ODD_CREDITS})
POLICY = PaymentPolicy(duplicate_window_ms=600_000)
Json = dict[str, Any]


def apply(ledger: Ledger, event: Json, api: StripeAPI, policy: PaymentPolicy = POLICY) -> str:
    return apply_payment_event(
        ledger, parse_event(event), catalog=CATALOG, gateway=api, policy=policy
    )


def granted(
    ledger: Ledger,
    fake: FakeStripe,
    api: StripeAPI,
    account: str,
    *,
    price: str = PRICE,
    amount: int = AMOUNT,
    created: int | None = None,
    customer: str | None = None,
) -> tuple[Json, Json]:
    """A pack bought and landed through its ``checkout.session.completed``; returns
    (payment_intent, charge) as the fake holds them."""
    session, intent, charge = fake.create_paid_checkout(
        account, price, amount, customer=customer or f"cus_{account}", created=created
    )
    apply(ledger, envelope("checkout.session.completed", session), api)
    return intent, charge


def decisions(ledger: Ledger, purchase: str) -> list[str]:
    return [str(d["decision"]) for d in ledger.payments.decisions(purchase)]


def charge_refunded(api: StripeAPI, charge_id: str) -> Json:
    """The ``charge.refunded`` event for the charge as Stripe holds it now (cumulative)."""
    return envelope("charge.refunded", api.retrieve_charge(charge_id), created=int(time.time()))


# --------------------------------------------------------------------------- duplicate charges


def test_the_same_pack_paid_twice_within_the_window_refunds_the_second_as_duplicate(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    t0 = int(time.time()) - 300
    first, _ = granted(ledger, fake, api, "acct_dup", customer="cus_dup", created=t0)
    session, second, _ = fake.create_paid_checkout(
        "acct_dup", PRICE, AMOUNT, customer="cus_dup", created=t0 + 60
    )
    said = apply(ledger, envelope("checkout.session.completed", session), api)
    assert said == f"purchase {second['id']}: duplicate, refunded"
    apply(ledger, envelope("payment_intent.succeeded", second), api)  # replayed: nothing more

    (refund,) = fake.objects("refund")
    assert (refund["payment_intent"], refund["amount"]) == (second["id"], AMOUNT)
    assert refund["reason"] == "duplicate"
    assert refund["metadata"] == {
        "refundry_reason": "duplicate",
        "refundry_key": refund_key(second["id"]),
    }
    assert len(fake.refund_calls) == 1
    payment = ledger.payments.get(second["id"])
    assert payment is not None and payment.state == "refunded"
    assert payment.refund_reason == "duplicate"
    assert pack_entries(ledger_url, second["id"]) == []
    assert decisions(ledger, second["id"]) == ["duplicate", "refund"]
    assert ledger.payments.decisions(second["id"])[0]["reason"].endswith(first["id"])
    assert ledger.balance("acct_dup") == CREDITS
    assert audit(ledger.db) == []


def test_the_same_pack_paid_twice_further_apart_than_the_window_is_granted_twice(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    t0 = int(time.time()) - 3000
    first, _ = granted(ledger, fake, api, "acct_twice", customer="cus_2", created=t0)
    second, _ = granted(ledger, fake, api, "acct_twice", customer="cus_2", created=t0 + 601)
    assert ledger.balance("acct_twice") == 2 * CREDITS
    for intent in (first, second):
        assert pack_entries(ledger_url, intent["id"]) == [("grant", CREDITS, "acct_twice")]
    assert fake.refund_calls == []


# --------------------------------------------------------------------------- claw-backs


def test_a_partial_refund_claws_back_its_share_rounded_down_and_the_full_refund_the_rest(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    intent, charge = granted(ledger, fake, api, "acct_part", price=ODD_PRICE, amount=ODD_AMOUNT)
    api.refund_payment(intent["id"], amount=500, reason="customer_request", idempotency_key="s1")
    half = charge_refunded(api, charge["id"])
    assert apply(ledger, half, api).endswith(": 166 credits clawed back")  # 333 * 1/2, floor
    assert ledger.balance("acct_part") == ODD_CREDITS - 166
    assert apply(ledger, half, api).endswith(": 0 credits clawed back")

    api.refund_payment(intent["id"], amount=None, reason="customer_request", idempotency_key="s2")
    full = charge_refunded(api, charge["id"])
    assert apply(ledger, full, api).endswith(": 167 credits clawed back")
    for replay in (full, half, full):
        assert apply(ledger, replay, api).endswith(": 0 credits clawed back")
    assert ledger.balance("acct_part") == 0
    assert pack_entries(ledger_url, intent["id"]) == [
        ("grant", 333, "acct_part"),
        ("clawback", -166, "acct_part"),
        ("clawback", -167, "acct_part"),
    ]
    payment = ledger.payments.get(intent["id"])
    assert payment is not None
    assert (payment.clawed_credits, payment.refunded_amount, payment.flag) == (333, 1000, None)
    assert audit(ledger.db) == []


def test_a_lost_dispute_claws_the_pack_back_and_a_won_one_takes_nothing(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    lost, lost_charge = granted(ledger, fake, api, "acct_lost")
    won, won_charge = granted(ledger, fake, api, "acct_won")
    said = apply(
        ledger, envelope("charge.dispute.closed", fake.dispute(lost_charge["id"], "lost")), api
    )
    assert said.endswith(f": {CREDITS} credits clawed back (dispute lost)")
    closed_won = envelope("charge.dispute.closed", fake.dispute(won_charge["id"], "won"))
    assert apply(ledger, closed_won, api) == "dispute won: nothing to claw back"
    assert ledger.balance("acct_lost") == 0
    assert ledger.balance("acct_won") == CREDITS
    assert [e[0] for e in pack_entries(ledger_url, lost["id"])] == ["grant", "clawback"]
    assert [e[0] for e in pack_entries(ledger_url, won["id"])] == ["grant"]
    assert fake.refund_calls == []  # a dispute's money is gone already: nothing to refund
    assert audit(ledger.db) == []


def test_a_claw_back_below_zero_is_applied_and_flagged(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    intent, charge = granted(ledger, fake, api, "acct_spent")
    ledger.charge(
        generation_id="gen-spent",
        account_id="acct_spent",
        provider="kling",
        operation="video",
        credits=400,
    )
    api.refund_payment(intent["id"], amount=None, reason="customer_request", idempotency_key="s")
    apply(ledger, charge_refunded(api, charge["id"]), api)
    assert ledger.balance("acct_spent") == CREDITS - 400 - CREDITS
    payment = ledger.payments.get(intent["id"])
    assert payment is not None
    assert payment.flag == "negative_balance"
    assert payment.clawed_credits == CREDITS
    assert pack_entries(ledger_url, intent["id"])[-1] == ("clawback", -CREDITS, "acct_spent")
    assert audit(ledger.db) == []  # the balance still equals its entries


# --------------------------------------------------------------------------- fraud and failures


def test_an_early_fraud_warning_refunds_the_payment_and_revokes_the_pack(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    intent, charge = granted(ledger, fake, api, "acct_fraud")
    warning = envelope("radar.early_fraud_warning.created", fake.early_fraud_warning(charge["id"]))
    said = apply(ledger, warning, api)
    assert said.endswith("refunded and revoked (early fraud warning)")
    apply(ledger, warning, api)  # delivered again: nothing more

    (refund,) = fake.objects("refund")
    assert (refund["payment_intent"], refund["amount"]) == (intent["id"], AMOUNT)
    assert refund["reason"] == "fraudulent"
    assert refund["metadata"]["refundry_reason"] == "early_fraud_warning"
    assert len(fake.refund_calls) == 1
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and payment.state == "refunded"
    assert ledger.balance("acct_fraud") == 0
    assert pack_entries(ledger_url, intent["id"]) == [
        ("grant", CREDITS, "acct_fraud"),
        ("clawback", -CREDITS, "acct_fraud"),
    ]
    assert decisions(ledger, intent["id"]) == ["grant", "refund", "clawback"]
    assert audit(ledger.db) == []


def test_an_early_fraud_warning_under_the_alert_policy_only_records_an_alert(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    intent, charge = granted(ledger, fake, api, "acct_alert")
    warning = envelope("radar.early_fraud_warning.created", fake.early_fraud_warning(charge["id"]))
    said = apply(ledger, warning, api, PaymentPolicy(fraud_action="alert"))
    assert said.endswith("fraud warning alerted")
    assert decisions(ledger, intent["id"]) == ["grant", "alert"]
    assert "early fraud warning issfr_" in ledger.payments.decisions(intent["id"])[-1]["reason"]
    assert fake.refund_calls == []
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and payment.state == "granted"
    assert ledger.balance("acct_alert") == CREDITS
    assert [e[0] for e in pack_entries(ledger_url, intent["id"])] == ["grant"]


def test_a_refund_that_failed_at_stripe_records_an_alert(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    intent, _ = granted(ledger, fake, api, "acct_refail")
    fake.refund_pending_reason = "insufficient_funds"
    refund = api.refund_payment(intent["id"], amount=100, reason="x", idempotency_key="s")
    failed = fake.settle_refund(refund["id"], succeeded=False)
    said = apply(ledger, envelope("refund.updated", failed), api)
    assert said == f"refund {refund['id']} failed: alerted"
    alert = ledger.payments.decisions(intent["id"])[-1]
    assert alert["decision"] == "alert"
    assert alert["reason"] == f"refund {refund['id']} failed: expired_or_canceled_card"
    assert ledger.balance("acct_refail") == CREDITS


# --------------------------------------------------------------------------- lost answers


def test_a_rerun_after_stripe_refunded_but_the_answer_was_lost_confirms_the_same_refund(
    ledger: Ledger, ledger_url: str, fake: FakeStripe
) -> None:
    with StripeAPI(KEY, base=fake.url, read_timeout_s=0.5, max_network_retries=0) as api:
        intent, charge = granted(ledger, fake, api, "acct_lost_answer")
        warning = envelope(
            "radar.early_fraud_warning.created", fake.early_fraud_warning(charge["id"])
        )
        fake.fault("/v1/refunds", 1, hang_s=10.0, after_effect=True)
        with pytest.raises(PaymentProviderUnavailable) as caught:
            apply(ledger, warning, api)
        assert not caught.value.permanent
        assert len(fake.objects("refund")) == 1  # Stripe did refund
        payment = ledger.payments.get(intent["id"])
        assert payment is not None and payment.state == "refunding"
        assert ledger.balance("acct_lost_answer") == CREDITS  # not clawed back before confirmed

        apply(ledger, warning, api)  # the worker's retry of the same message

    (refund,) = fake.objects("refund")
    calls = fake.refund_calls
    assert [(c.status, c.replayed) for c in calls] == [(0, False), (200, True)]
    assert {c.idempotency_key for c in calls} == {refund_key(intent["id"])}
    assert refund["metadata"]["refundry_key"] == refund_key(intent["id"])
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and payment.state == "refunded"
    assert decisions(ledger, intent["id"]) == ["grant", "refund", "clawback"]
    assert pack_entries(ledger_url, intent["id"]) == [
        ("grant", CREDITS, "acct_lost_answer"),
        ("clawback", -CREDITS, "acct_lost_answer"),
    ]
    assert ledger.balance("acct_lost_answer") == 0
    assert audit(ledger.db) == []


def test_refunding_what_is_left_after_a_partial_refund_revokes_the_whole_pack(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """Support refunded half; then a fraud warning makes Refundry refund the other half. The
    purchase is then fully refunded, so none of its credits may stay on the balance."""
    intent, charge = granted(ledger, fake, api, "acct_half", price=ODD_PRICE, amount=ODD_AMOUNT)
    api.refund_payment(intent["id"], amount=500, reason="customer_request", idempotency_key="s")
    apply(ledger, charge_refunded(api, charge["id"]), api)
    assert ledger.balance("acct_half") == ODD_CREDITS - 166

    apply(
        ledger,
        envelope("radar.early_fraud_warning.created", fake.early_fraud_warning(charge["id"])),
        api,
    )
    assert api.retrieve_charge(charge["id"])["refunded"] is True  # Stripe: all money back
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and payment.state == "refunded"
    assert payment.clawed_credits == ODD_CREDITS
    assert ledger.balance("acct_half") == 0
    assert sum(amount for _, amount, _ in pack_entries(ledger_url, intent["id"])) == 0
    assert audit(ledger.db) == []


def test_a_full_refund_reported_before_the_purchase_landed_is_not_forgotten(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    """Stripe does not order events: the ``charge.refunded`` of a purchase refunded in the
    Dashboard can come before its ``checkout.session.completed``. The money is back, so the
    pack must not stay on the balance."""
    session, intent, charge = fake.create_paid_checkout("acct_early", PRICE, AMOUNT)
    api.refund_payment(intent["id"], amount=None, reason="customer_request", idempotency_key="s")
    apply(ledger, charge_refunded(api, charge["id"]), api)
    apply(ledger, envelope("checkout.session.completed", session), api)
    apply(ledger, envelope("payment_intent.succeeded", intent), api)
    assert ledger.balance("acct_early") == 0
    assert sum(amount for _, amount, _ in pack_entries(ledger_url, intent["id"])) == 0


def test_of_two_identical_purchases_landing_at_once_exactly_one_is_granted(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    """The later purchase's events may be processed first, or both at the same instant: the
    customer still ends with one pack and one charge."""
    t0 = int(time.time()) - 300
    sessions = [
        fake.create_paid_checkout(
            "acct_race", PRICE, AMOUNT, customer="cus_race", created=t0 + i * 30
        )[0]
        for i in range(2)
    ]
    said: list[str] = []
    errors: list[BaseException] = []

    def land(session: dict[str, object]) -> None:
        try:
            said.append(apply(ledger, envelope("checkout.session.completed", session), api))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=land, args=(s,)) for s in reversed(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == [] and len(said) == 2
    earlier, later = (str(s["payment_intent"]) for s in sessions)
    states = [getattr(ledger.payments.get(pi), "state", None) for pi in (earlier, later)]
    assert states == ["granted", "refunded"]  # the later payment is the duplicate
    (refund,) = fake.objects("refund")
    assert (refund["payment_intent"], refund["reason"]) == (later, "duplicate")
    assert ledger.balance("acct_race") == CREDITS
    assert audit(ledger.db) == []
