"""Every payment scenario with Stripe's events exactly as Stripe sends them: no ``line_items``
and no ``metadata.price_id`` anywhere, the account named only by ``client_reference_id``, each
event the fake's own snapshot of its moment, signed and handed to ``report_stripe_webhook``,
applied by real ``refundry worker`` processes over the real Redis broker; or nothing delivered
at all and ``refundry reconcile`` run as a process. Each event is confirmed at the fake Stripe,
over HTTP, and the pack read from the session's line items there. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import stripe

from ledger import Ledger, audit
from tests.support.commands import WorkerProcesses, clean_env, refundry
from tests.support.fake_stripe import FakeStripe
from tests.support.stripe_events import pack_entries
from tests.support.waiting import wait_until
from workers import client, runtime

KEY = "sk_test_refundry_as_sent"
SECRET = "whsec_refundry_as_sent_0123456789abcdef"
PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
ODD_PRICE, ODD_AMOUNT, ODD_CREDITS = "price_pack333", 1000, 333
PACKS = {PRICE: CREDITS, ODD_PRICE: ODD_CREDITS}
Json = dict[str, Any]


@pytest.fixture
def shop(
    fake: FakeStripe,
    refundry_env: dict[str, str],
    workers: WorkerProcesses,
    monkeypatch: pytest.MonkeyPatch,
) -> Shop:
    extra = {
        "STRIPE_API_KEY": KEY,
        "STRIPE_API_BASE": fake.url,
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "REFUNDRY_PACKS": json.dumps(PACKS),
    }
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    workers.env |= extra
    fake.add_price(PRICE, AMOUNT)
    fake.add_price(ODD_PRICE, ODD_AMOUNT)
    return Shop(fake, workers, refundry_env["DATABASE_URL"])


class Shop:
    """The fake Stripe, the worker processes, and the webhook endpoint between them."""

    def __init__(self, fake: FakeStripe, workers: WorkerProcesses, url: str) -> None:
        self.fake, self.workers, self.url = fake, workers, url
        self.ledger = runtime.ledger()
        self.delivered: list[str] = []

    def buy(self, account: str, price: str = PRICE, **how: Any) -> Json:
        """A Checkout Session for one pack, its account named only by client_reference_id."""
        how.setdefault("customer", f"cus_{account}")
        return self.fake.checkout([(price, 1)], client_reference_id=account, **how)

    def landed(self, account: str, price: str = PRICE) -> Json:
        """A pack bought, its events delivered and applied by one worker: its session."""
        session = self.buy(account, price)
        self.workers.start(processes=1, threads=2)
        self.deliver(self.events(session))
        self.settled()
        assert self.decisions(session["payment_intent"]) == ["grant"]
        return session

    def events(self, session: Json, kinds: str = "*") -> list[Json]:
        """Every event Stripe emitted about the session, its PaymentIntent and its Charge."""
        intent = self.fake.get(session["payment_intent"])
        ids = {session["id"], intent["id"], intent.get("latest_charge")}
        return [e for e in self.fake.events(kinds) if e["data"]["object"]["id"] in ids]

    def deliver(self, events: Iterable[Json]) -> None:
        """Each event as Stripe posts it: signed now with the endpoint's secret."""
        for event in events:
            obj = event["data"]["object"]
            assert "line_items" not in obj and "price_id" not in (obj.get("metadata") or {})
            body = json.dumps(event)
            header = stripe.WebhookSignature.generate_signature_header(
                body, SECRET, int(time.time())
            )
            inbox_id = client.report_stripe_webhook(payload=body.encode(), signature=header)
            self.delivered.append(inbox_id)

    def settled(self, timeout: float = 60) -> None:
        """Wait until every delivered event is applied; none may be dead-lettered."""

        def done() -> bool:
            items = [self.ledger.inbox.get(i) for i in self.delivered]
            return all(item is not None and item.state != "pending" for item in items)

        wait_until(done, timeout=timeout, message=f"events unapplied: {self.log()}")
        assert self.ledger.dead.all() == [], self.log()
        assert {self.ledger.inbox.get(i).state for i in self.delivered} == {"processed"}  # type: ignore[union-attr]

    def log(self) -> str:
        return self.workers.log.read_text() if self.workers.log.exists() else ""

    def line_item_reads(self) -> int:
        """Reads at Stripe that returned line items: listed, or expanded in a session."""
        return sum(
            1
            for r in self.fake.requests
            if r.path.endswith("/line_items")
            or any(e.endswith("line_items") for e in r.params.get("expand") or [])
        )

    def decisions(self, purchase: str) -> list[str]:
        return [str(d["decision"]) for d in self.ledger.payments.decisions(purchase)]


def test_one_purchase_whose_events_come_twice_and_reordered_lands_once(shop: Shop) -> None:
    session = shop.buy("acct_once")
    pi = session["payment_intent"]
    events = shop.events(session)
    assert [e["type"] for e in events] == [
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    shop.deliver([*reversed(events), *events])
    shop.workers.start(processes=2, threads=4)
    shop.settled()
    assert shop.ledger.balance("acct_once") == CREDITS
    assert pack_entries(shop.url, pi) == [("grant", CREDITS, "acct_once")]
    assert shop.decisions(pi) == ["grant"]
    assert shop.line_item_reads() >= 1  # the pack came from Stripe's line items
    assert audit(shop.ledger.db) == []


def test_a_delayed_payment_lands_when_it_succeeds(shop: Shop) -> None:
    session = shop.buy("acct_async", delayed=True)
    pi = session["payment_intent"]
    shop.workers.start(processes=1, threads=2)
    shop.deliver(shop.events(session, "checkout.session.completed"))
    shop.settled()
    payment = shop.ledger.payments.get(pi)
    assert payment is not None and payment.state == "unpaid"
    assert shop.ledger.balance("acct_async") == 0

    shop.fake.settle_delayed(session["id"], succeeded=True)
    shop.deliver(shop.events(session))  # all of them, the early unpaid snapshot too
    shop.settled()
    assert shop.ledger.balance("acct_async") == CREDITS
    assert pack_entries(shop.url, pi) == [("grant", CREDITS, "acct_async")]
    assert audit(shop.ledger.db) == []


def test_a_delayed_payment_that_fails_lands_nothing(shop: Shop) -> None:
    session = shop.buy("acct_async_failed", delayed=True)
    pi = session["payment_intent"]
    shop.fake.settle_delayed(session["id"], succeeded=False)
    events = shop.events(session)
    assert [e["type"] for e in events] == [
        "charge.pending",
        "payment_intent.processing",
        "checkout.session.completed",
        "charge.failed",
        "payment_intent.payment_failed",
        "checkout.session.async_payment_failed",
    ]
    shop.deliver(events)
    shop.workers.start(processes=1, threads=2)
    shop.settled()
    payment = shop.ledger.payments.get(pi)
    assert payment is not None and payment.state == "failed"
    assert shop.ledger.balance("acct_async_failed") == 0 and pack_entries(shop.url, pi) == []
    assert audit(shop.ledger.db, landing_window_ms=0) == []


def test_the_same_pack_paid_twice_in_a_minute_is_refunded_once_as_a_duplicate(
    shop: Shop,
) -> None:
    t0 = int(time.time()) - 300
    sessions = [shop.buy("acct_dup", customer="cus_dup", created=t0 + 60 * n) for n in range(2)]
    shop.deliver(e for s in sessions for e in shop.events(s))
    shop.workers.start(processes=2, threads=4)
    shop.settled()
    pis = [s["payment_intent"] for s in sessions]
    states = [shop.ledger.payments.get(pi).state for pi in pis]  # type: ignore[union-attr]
    assert states == ["granted", "refunded"]  # the later payment, in any order of events
    refunded = pis[1]
    (refund,) = shop.fake.objects("refund")
    assert (refund["payment_intent"], refund["amount"], refund["reason"]) == (
        refunded,
        AMOUNT,
        "duplicate",
    )
    # Stripe then tells of its own refund: nothing more moves.
    shop.deliver(shop.fake.events("charge.refunded") + shop.fake.events("refund.created"))
    shop.settled()
    assert shop.ledger.balance("acct_dup") == CREDITS
    # Nothing, or (when its events came first) its pack and the claw-back of all of it.
    assert sum(amount for _, amount, _ in pack_entries(shop.url, refunded)) == 0
    assert len(shop.fake.objects("refund")) == 1
    assert audit(shop.ledger.db) == []


def test_a_full_refund_in_the_dashboard_claws_the_whole_pack_back_once(shop: Shop) -> None:
    session = shop.landed("acct_full")
    pi = session["payment_intent"]
    shop.fake.refund(pi)
    refunded = shop.events(session, "charge.refunded")
    shop.deliver(refunded + refunded)
    shop.settled()
    assert shop.ledger.balance("acct_full") == 0
    assert pack_entries(shop.url, pi) == [
        ("grant", CREDITS, "acct_full"),
        ("clawback", -CREDITS, "acct_full"),
    ]
    assert audit(shop.ledger.db) == []


def test_partial_refunds_claw_back_their_share_once_each(shop: Shop) -> None:
    session = shop.landed("acct_part", ODD_PRICE)
    pi = session["payment_intent"]
    shop.fake.refund(pi, 500)
    shop.deliver(shop.events(session, "charge.refunded") * 2)
    shop.settled()
    assert shop.ledger.balance("acct_part") == ODD_CREDITS - 166  # 333 * 500/1000, floor
    shop.fake.refund(pi)
    shop.deliver(shop.events(session, "charge.refunded") * 2)  # both snapshots, again
    shop.settled()
    assert shop.ledger.balance("acct_part") == 0
    assert pack_entries(shop.url, pi) == [
        ("grant", ODD_CREDITS, "acct_part"),
        ("clawback", -166, "acct_part"),
        ("clawback", -167, "acct_part"),
    ]
    assert audit(shop.ledger.db) == []


def test_a_lost_dispute_claws_the_pack_back_once(shop: Shop) -> None:
    session = shop.landed("acct_lost")
    pi = session["payment_intent"]
    dispute = shop.fake.dispute(shop.fake.get(pi)["latest_charge"], "lost")
    disputed = shop.fake.events("charge.dispute.*", about=dispute["id"])
    assert [e["type"] for e in disputed] == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.closed",
    ]
    shop.deliver(disputed + disputed)
    shop.settled()
    assert shop.ledger.balance("acct_lost") == 0
    assert [kind for kind, _, _ in pack_entries(shop.url, pi)] == ["grant", "clawback"]
    assert shop.fake.objects("refund") == []  # a dispute's money is gone already
    assert audit(shop.ledger.db) == []


def test_an_outage_while_confirming_the_session_is_retried_and_the_pack_lands(
    shop: Shop,
) -> None:
    session = shop.buy("acct_outage")
    pi = session["payment_intent"]
    read = f"/v1/checkout/sessions/{session['id']}"
    shop.fake.fault(read, 1, status=429, retry_after=1)
    shop.fake.fault(read, 3, status=503)  # the library's 3 tries
    shop.deliver(shop.events(session, "checkout.session.completed"))
    shop.workers.start(processes=1, threads=1)
    shop.settled()
    reads = [r.status for r in shop.fake.requests if r.path == read]
    assert reads == [429, 503, 503, 503, 200]  # two failed attempts, then the retry
    assert shop.ledger.balance("acct_outage") == CREDITS
    assert pack_entries(shop.url, pi) == [("grant", CREDITS, "acct_outage")]


def test_a_price_outside_the_catalog_is_dead_lettered_with_its_reason_and_lands_nothing(
    shop: Shop,
) -> None:
    shop.fake.add_price("price_not_sold", 700)
    session = shop.fake.checkout([("price_not_sold", 1)], client_reference_id="acct_odd")
    shop.deliver(shop.events(session, "checkout.session.completed"))
    shop.workers.start(processes=1, threads=1)
    wait_until(lambda: shop.ledger.dead.all(), timeout=60, message=shop.log())
    (dead,) = shop.ledger.dead.all()
    assert dead["reason"] == "PackUnknown price_id=price_not_sold"
    # Recorded without a pack, its refusal as its decision: reconciliation settles it.
    payment = shop.ledger.payments.get(session["payment_intent"])
    assert payment is not None and (payment.state, payment.credits) == ("paid", None)
    assert [
        (d["decision"], d["reason"]) for d in shop.ledger.payments.decisions(payment.purchase_key)
    ] == [("refused", "PackUnknown price_id=price_not_sold")]
    assert shop.ledger.balance("acct_odd") == 0


# --------------------------------------------------------------------------- refundry reconcile


def reconcile_env(tmp_path: Path, fake: FakeStripe, ledger_url: str, action: str) -> dict[str, str]:
    fake.add_price(PRICE, AMOUNT)
    return clean_env(
        tmp_path,
        DATABASE_URL=ledger_url,
        STRIPE_API_KEY=KEY,
        STRIPE_API_BASE=fake.url,
        REFUNDRY_PACKS=json.dumps(PACKS),
        REFUNDRY_LANDING_WINDOW_S="3600",
        UNLANDED_PACK_ACTION=action,
    )


def reconciled(env: dict[str, str]) -> list[tuple[str, str]]:
    done = refundry(env, "reconcile")
    assert done.returncode == 0, done.stderr
    *decided, _ = [json.loads(line) for line in done.stdout.splitlines()]
    return [(d["purchase"], d["action"]) for d in decided]


def test_reconcile_completes_packs_paid_at_stripe_that_never_landed(
    tmp_path: Path, fake: FakeStripe, ledger: Ledger, ledger_url: str
) -> None:
    """One purchase's webhooks never came; another's session event was recorded by an
    earlier Refundry that could not read its pack. Both are completed from Stripe."""
    env = reconcile_env(tmp_path, fake, ledger_url, "complete")
    paid_at = int(time.time()) - 7200
    lost = fake.checkout([(PRICE, 1)], client_reference_id="acct_rc1", created=paid_at)
    half = fake.checkout([(PRICE, 1)], client_reference_id="acct_rc2", created=paid_at)
    ledger.payments.observe(
        purchase_key=half["payment_intent"],
        provider="stripe",
        state="paid",
        session_id=half["id"],
        amount=AMOUNT,
        paid_at_ms=paid_at * 1000,
    )
    lost_pi, half_pi = lost["payment_intent"], half["payment_intent"]
    assert sorted(reconciled(env)) == sorted([(lost_pi, "complete"), (half_pi, "complete")])
    assert reconciled(env) == []
    for account, pi in (("acct_rc1", lost_pi), ("acct_rc2", half_pi)):
        assert ledger.balance(account) == CREDITS
        assert pack_entries(ledger_url, pi) == [("grant", CREDITS, account)]
    assert fake.refund_calls == []
    check = refundry(env, "ledger", "check")
    assert (check.returncode, check.stdout.strip()) == (0, "ok")


def test_reconcile_refunds_a_pack_paid_at_stripe_that_never_landed(
    tmp_path: Path, fake: FakeStripe, ledger: Ledger, ledger_url: str
) -> None:
    env = reconcile_env(tmp_path, fake, ledger_url, "refund")
    paid_at = int(time.time()) - 7200
    session = fake.checkout([(PRICE, 1)], client_reference_id="acct_rr", created=paid_at)
    pi = session["payment_intent"]
    assert reconciled(env) == [(pi, "refund")]
    assert reconciled(env) == []
    (refund,) = fake.objects("refund")
    assert (refund["payment_intent"], refund["amount"]) == (pi, AMOUNT)
    payment = ledger.payments.get(pi)
    assert payment is not None and payment.state == "refunded"
    assert ledger.balance("acct_rr") == 0 and pack_entries(ledger_url, pi) == []
    check = refundry(env, "ledger", "check")
    assert (check.returncode, check.stdout.strip()) == (0, "ok")
