"""A subscription charge made after the subscription's confirmed cancellation is refunded once, a
charge made before it is kept, whatever the order of the events and however often they come; a
rerun after Stripe refunded but the answer was lost confirms the same refund; a cancellation
only scheduled refunds nothing. On SQLite and PostgreSQL, refunds made over HTTP at the fake
Stripe, whose invoices (API version dahlia) name no PaymentIntent: each event is confirmed by
retrieving its subscription or its invoice, whose payments come expanded with it."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from handlers.subscriptions import REFUND_REASON
from ledger import Ledger, audit
from ledger.payments import refund_key
from providers.stripe import PayloadUnreadable
from providers.stripe_api import PaymentProviderUnavailable, StripeAPI
from tests.support.commands import WorkerProcesses
from tests.support.fake_billing import FakeBilling
from tests.support.inbox_waits import wait_processed
from tests.support.settings import configure
from tests.support.stripe_events import apply_subscription as apply
from tests.support.stripe_events import envelope
from workers import client, runtime

KEY = "sk_test_refundry_subscriptions"
AMOUNT = 2900
Json = dict[str, Any]


@pytest.fixture
def fake(billing: FakeBilling) -> FakeBilling:
    return billing


@pytest.fixture
def api(billing_api: StripeAPI) -> StripeAPI:
    return billing_api


class Story:
    """A subscription with an invoice paid before its cancellation and one paid after it,
    each as the event Stripe sends."""

    def __init__(self, fake: FakeBilling, customer: str) -> None:
        self.t0 = t0 = int(time.time()) - 86_400
        self.sub = fake.create_subscription(customer, created=t0)
        self.before, self.before_intent = fake.pay_invoice(self.sub["id"], AMOUNT, t0 + 100)
        cancelled = fake.cancel_subscription(self.sub["id"], at=t0 + 200)
        self.after, self.after_intent = fake.pay_invoice(self.sub["id"], AMOUNT, t0 + 300)
        self.events = {
            "before": envelope("invoice.paid", self.before, created=t0 + 100),
            "cancellation": envelope("customer.subscription.deleted", cancelled, created=t0 + 200),
            "after": envelope("invoice.paid", self.after, created=t0 + 300),
        }


def decisions(ledger: Ledger, invoice_id: str) -> list[str]:
    return [str(d["decision"]) for d in ledger.subscriptions.decisions(invoice_id)]


def lookups(fake: FakeBilling) -> list[str]:
    return [s.params.get("invoice", "") for s in fake.requests if s.path == "/v1/invoice_payments"]


def assert_refunded_once(ledger: Ledger, fake: FakeBilling, story: Story) -> None:
    (refund,) = fake.objects("refund")
    intent = story.after_intent["id"]
    assert (refund["payment_intent"], refund["amount"]) == (intent, AMOUNT)
    assert refund["reason"] is None  # ours is not one Stripe accepts: it is in the metadata
    assert refund["metadata"] == {
        "refundry_reason": REFUND_REASON,
        "refundry_key": refund_key(intent),
    }
    assert {c.idempotency_key for c in fake.refund_calls} == {refund_key(intent)}
    after = ledger.subscriptions.charge(story.after["id"])
    assert after is not None
    assert (after.state, after.refund_id, after.payment_intent) == (
        "refunded",
        refund["id"],
        intent,
    )
    assert decisions(ledger, story.after["id"]) == ["refund"]
    before = ledger.subscriptions.charge(story.before["id"])
    assert before is not None and (before.state, before.refund_id) == ("kept", None)
    assert decisions(ledger, story.before["id"]) == ["keep"]
    assert audit(ledger.db) == []


# --------------------------------------------------------------------------- any order, any count


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["before", "cancellation", "after"])), ids="-".join
)
def test_only_the_charge_paid_after_the_cancellation_is_refunded_in_any_order_and_replay(
    ledger: Ledger, fake: FakeBilling, api: StripeAPI, order: tuple[str, ...]
) -> None:
    story = Story(fake, f"cus_{'_'.join(order)}")
    said = [apply(ledger, story.events[name], api) for name in order + order]
    assert_refunded_once(ledger, fake, story)
    assert len(fake.refund_calls) == 1  # replays found it refunded: no second call at all
    assert lookups(fake) == []  # each invoice came with its payments: no lookup
    # The refund is announced once, by whichever of the two events came second; no replay
    # announces it again.
    first_pass = dict(zip(order, said[:3], strict=True))
    if order.index("cancellation") < order.index("after"):
        assert first_pass["after"] == f"invoice {story.after['id']}: refunded"
    else:
        assert first_pass["cancellation"].startswith(
            f"subscription {story.sub['id']} cancelled: 1 charge(s) refunded"
        )
    assert sum(s.endswith(": refunded") or " 1 charge(s) refunded" in s for s in said) == 1
    cancellation = ledger.subscriptions.cancellation(story.sub["id"])
    assert cancellation is not None
    assert cancellation.cancelled_at_ms == story.events["cancellation"]["created"] * 1000


def test_a_charge_paid_before_the_cancellation_is_kept_in_either_order(
    ledger: Ledger, fake: FakeBilling, api: StripeAPI
) -> None:
    first, second = Story(fake, "cus_keep_a"), Story(fake, "cus_keep_b")
    assert apply(ledger, first.events["before"], api).endswith("its subscription is not cancelled")
    assert apply(ledger, first.events["cancellation"], api).endswith(
        "0 charge(s) refunded, 1 otherwise settled"
    )
    apply(ledger, second.events["cancellation"], api)
    assert apply(ledger, second.events["before"], api) == f"invoice {second.before['id']}: kept"
    for story in (first, second):
        charge = ledger.subscriptions.charge(story.before["id"])
        assert charge is not None and charge.state == "kept"
        assert decisions(ledger, story.before["id"]) == ["keep"]
    assert fake.refund_calls == []


# --------------------------------------------------------------------------- lost answers


@pytest.mark.parametrize("rerun", ["after", "cancellation"])
def test_a_rerun_after_stripe_refunded_but_the_answer_was_lost_confirms_the_same_refund(
    ledger: Ledger, fake: FakeBilling, rerun: str
) -> None:
    story = Story(fake, f"cus_lost_{rerun}")
    with StripeAPI(KEY, base=fake.url, read_timeout_s=0.5, max_network_retries=0) as api:
        apply(ledger, story.events["before"], api)
        apply(ledger, story.events["cancellation"], api)
        fake.fault("/v1/refunds", 1, hang_s=10.0, after_effect=True)
        with pytest.raises(PaymentProviderUnavailable) as caught:
            apply(ledger, story.events["after"], api)
        assert not caught.value.permanent
        assert len(fake.objects("refund")) == 1  # Stripe did refund
        charge = ledger.subscriptions.charge(story.after["id"])
        assert charge is not None and charge.state == "refunding"

        apply(ledger, story.events[rerun], api)  # the worker's retry, or a later event
        apply(ledger, story.events[rerun], api)

    calls = fake.refund_calls
    assert [(c.status, c.replayed) for c in calls] == [(0, False), (200, True)]
    assert_refunded_once(ledger, fake, story)


# --------------------------------------------------------------------------- nothing to refund


@pytest.mark.parametrize("cancellation_first", [True, False])
def test_a_cancellation_only_scheduled_refunds_nothing(
    ledger: Ledger, fake: FakeBilling, api: StripeAPI, cancellation_first: bool
) -> None:
    t0 = int(time.time()) - 86_400
    sub = fake.create_subscription("cus_scheduled", created=t0)
    scheduled = fake.schedule_cancellation(sub["id"], at=t0 + 100, period_end=t0 + 10_000)
    invoice, _ = fake.pay_invoice(sub["id"], AMOUNT, t0 + 300)
    events = [
        envelope("customer.subscription.updated", scheduled, created=t0 + 100),
        envelope("invoice.paid", invoice, created=t0 + 300),
    ]
    said = [apply(ledger, e, api) for e in (events if cancellation_first else events[::-1])]
    assert (
        f"subscription {sub['id']}: cancellation scheduled at the period's end" in said[0] + said[1]
    )
    assert ledger.subscriptions.cancellation(sub["id"]) is None
    charge = ledger.subscriptions.charge(invoice["id"])
    assert charge is not None and charge.state == "kept"
    assert decisions(ledger, invoice["id"]) == []
    assert fake.refund_calls == [] and lookups(fake) == []


def test_an_invoice_comes_with_its_payment_and_one_of_nothing_is_kept(
    ledger: Ledger, fake: FakeBilling, api: StripeAPI
) -> None:
    story = Story(fake, "cus_expanded")
    apply(ledger, story.events["cancellation"], api)
    succeeded = envelope("invoice.payment_succeeded", story.after)
    assert apply(ledger, succeeded, api).endswith(": refunded")
    assert lookups(fake) == []
    reads = [r.params for r in fake.requests if r.path == f"/v1/invoices/{story.after['id']}"]
    assert reads == [{"expand": ["payments"]}]
    free = fake.settle_invoice(story.sub["id"], 0, story.t0 + 400)
    (paid,) = fake.events("invoice.paid", about=free["id"])
    assert apply(ledger, paid, api).endswith("kept (nothing charged)")
    no_sub = {**story.after, "id": "in_oneoff0001", "parent": None}
    assert apply(ledger, envelope("invoice.paid", no_sub), api).endswith(
        "of no subscription, ignored"
    )
    assert not [r for r in fake.requests if r.path.endswith("in_oneoff0001")]  # moved nothing
    assert len(fake.objects("refund")) == 1


def test_a_charge_after_the_cancellation_paid_out_of_band_is_alerted_not_refunded(
    ledger: Ledger, fake: FakeBilling, api: StripeAPI
) -> None:
    story = Story(fake, "cus_oob")
    oob = fake.settle_invoice(story.sub["id"], AMOUNT, story.t0 + 400)
    (paid,) = fake.events("invoice.paid", about=oob["id"])
    apply(ledger, story.events["cancellation"], api)
    assert apply(ledger, paid, api) == f"invoice {oob['id']}: alerted, not refunded"
    assert decisions(ledger, oob["id"]) == ["alert"]
    apply(ledger, paid, api)
    assert decisions(ledger, oob["id"]) == ["alert"]  # once
    charge = ledger.subscriptions.charge(oob["id"])
    assert charge is not None and charge.state == "kept"
    assert fake.refund_calls == []


# --------------------------------------------------------------------------- through the broker


@pytest.fixture
def stripe_env(
    fake: FakeBilling, refundry_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    return configure(monkeypatch, refundry_env, STRIPE_API_KEY=KEY, STRIPE_API_BASE=fake.url)


def test_subscription_events_reported_twice_each_through_the_workers_refund_once(
    stripe_env: dict[str, str], workers: WorkerProcesses, fake: FakeBilling
) -> None:
    workers.env |= stripe_env
    story = Story(fake, "cus_e2e")
    events = list(story.events.values())
    ids = [client.report_payment(provider="stripe", event=e) for e in events + events[::-1]]
    workers.start(processes=2, threads=4)
    ledger = runtime.ledger()

    wait_processed(ledger, ids, "subscription events")
    assert_refunded_once(ledger, fake, story)
    assert ledger.dead.all() == []


def test_report_payment_refuses_an_unreadable_invoice_recording_nothing(
    stripe_env: dict[str, str], fake: FakeBilling
) -> None:
    story = Story(fake, "cus_refused")
    broken = envelope("invoice.paid", {k: v for k, v in story.after.items() if k != "amount_paid"})
    with pytest.raises(PayloadUnreadable) as caught:
        client.report_payment(provider="stripe", event=broken)
    assert caught.value.fields["field"] == "data.object.amount_paid"
    assert runtime.ledger().inbox.counts() == {}
