"""A stateful property of payments: packs bought through Checkout Sessions and through
PaymentIntents, refunded in full or in part in the Dashboard, their refunds (ours too)
failing after they succeeded, disputed (won or lost, in full or in part), warned of fraud;
subscriptions cancelled, their invoices paid before and after. Stripe (the local fake, over
HTTP) delivers every event one to three times, in any order: at once, as most webhooks
arrive, or later among others; workers apply the inbox's messages (the path
``process_payment`` runs), the broker loses some, the inbox sweep sends them again, and
reconciliation runs between, before and past the landing window. After every step the
ledger audit is clean, each balance equals a plain model's (``tests/support/payments_model.py``,
which calls none of Refundry's code), and each subscription charge is kept or refunded as the
model says; at the end, once every event is delivered, every paid pack has landed or been
refunded (or, charged back, Stripe refused our refund: the dispute decides).

Runs on SQLite and PostgreSQL, each example in a fresh database (a new file, or a new
schema) and a fresh fake Stripe. ``REFUNDRY_STATEFUL_EXAMPLES`` and
``REFUNDRY_STATEFUL_STEPS`` make the run longer (see README).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from handlers.packs import PackCatalog, PaymentPolicy
from handlers.payments import apply_payment_event
from handlers.reconcile import reconcile
from handlers.subscriptions import apply_subscription_event
from ledger import Ledger, audit, now_ms
from ledger.payments import refund_key
from providers.deliveries import delivery_key
from providers.stripe import parse_event
from providers.stripe_api import StripeAPI
from providers.stripe_subscriptions import parse_subscription_event
from tests.support.fake_billing import FakeBilling
from tests.support.payments_model import Invoice, Pack, PaymentsModel
from tests.support.stateful import examples_and_steps, inbox_ids, run_machine, sweep_onto

EXAMPLES, STEPS = examples_and_steps(15, 40)

PACKS = {"price_pack500": (1900, 500), "price_pack333": (1000, 333)}  # price → (amount, credits)
CATALOG = PackCatalog({price: credits for price, (_, credits) in PACKS.items()})
ACCOUNTS = ("acct_a", "acct_b")
INVOICE_AMOUNT = 2900
MINUTE_S, HOUR_MS = 60, 3_600_000
COUNTED = ("examples", "steps", "events", "deliveries", "reconciliations", "packs landed")
COUNTED += ("packs refunded by us", "packs partly reversed", "invoices refunded")
COUNTED += ("refunds failed",)
Json = dict[str, Any]
A_PURCHASE: dict[str, st.SearchStrategy[Any]] = {
    "account": st.sampled_from(ACCOUNTS),
    "price": st.sampled_from(sorted(PACKS)),
    "minutes_ago": st.sampled_from([0, 4, 15]),  # paid this long ago (the duplicate window: 10)
    "checkout": st.booleans(),
    "data": st.data(),
}


class Payments(RuleBasedStateMachine):
    """One example: a fresh ledger and a fresh fake Stripe, two accounts buying packs, and
    subscriptions of other customers."""

    open_fresh_ledger: Callable[[], Ledger]
    ran: ClassVar[dict[str, int]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.ran["examples"] += 1
        self.ledger = type(self).open_fresh_ledger()
        self.stripe = FakeBilling().start()
        self.api = StripeAPI(
            "sk_test_refundry_sm", base=self.stripe.url, read_timeout_s=5.0, max_network_retries=0
        )
        for price, (amount, _) in PACKS.items():
            self.stripe.add_price(price, amount)
        self.now_s = int(time.time())
        self.seconds = itertools.count(1)  # no two payments at the same second
        self.policy = PaymentPolicy()
        self.model = PaymentsModel(self, fraud_action="alert", unlanded_action="complete")
        self.subscriptions: list[str] = []
        self.cancelled: set[str] = set()
        self.warned: set[str] = set()
        self.delivered: set[str] = set()  # events Stripe delivered at least once
        self.queue: list[str] = []  # the broker's messages (inbox ids), in no promised order
        self.inbox_ids = inbox_ids()

    @initialize(
        fraud=st.sampled_from(["refund_and_revoke", "alert"]),
        unlanded=st.sampled_from(["complete", "refund"]),
    )
    def configure(self, fraud: str, unlanded: str) -> None:
        """This example's payment policy (``REFUNDRY_FRAUD_ACTION``, ``UNLANDED_PACK_ACTION``)."""
        self.policy = PaymentPolicy(fraud_action=fraud, unlanded_action=unlanded)
        self.model.fraud_action, self.model.unlanded_action = fraud, unlanded

    # -- what customers, banks and the Dashboard do at Stripe --------------------------------------

    @initialize(**A_PURCHASE)
    def first_purchase(
        self, account: str, price: str, minutes_ago: int, checkout: bool, data: st.DataObject
    ) -> None:
        """Every example starts with a pack bought: what follows has something to act on."""
        self.buy(account, price, minutes_ago, checkout, data)

    @rule(**A_PURCHASE)
    def buy(
        self, account: str, price: str, minutes_ago: int, checkout: bool, data: st.DataObject
    ) -> None:
        """A pack bought by card, through a Checkout Session, or through a PaymentIntent the
        platform created naming the account and the price in its metadata."""
        amount, credits = PACKS[price]
        customer, paid_at = f"cus_{account}", self.now_s - minutes_ago * MINUTE_S
        paid_at -= next(self.seconds)
        with self._at_stripe(data):
            session: str | None = None
            if checkout:
                made = self.stripe.checkout(
                    [(price, 1)], client_reference_id=account, customer=customer, created=paid_at
                )
                session, intent = made["id"], self.stripe.get(made["payment_intent"])
            else:
                named = {"account_id": account, "price_id": price}
                intent = self.stripe.pay_without_checkout(
                    amount, named, customer=customer, created=paid_at
                )
            charge = intent["latest_charge"]
            bought = Pack(intent["id"], account, customer, price, credits, amount, paid_at, charge)
            bought.session = session
            self.model.bought(bought)

    @precondition(lambda self: self._open_charges())
    @rule(data=st.data(), whole=st.booleans())
    def refund_in_the_dashboard(self, data: st.DataObject, whole: bool) -> None:
        charge = data.draw(st.sampled_from(self._open_charges()))
        left = self._left(charge)
        amount = left if whole else data.draw(st.integers(1, left))
        with self._at_stripe(data):
            self.stripe.refund(self.stripe.get(charge)["payment_intent"], amount)

    @precondition(lambda self: self._standing_refunds())
    @rule(data=st.data())
    def refund_fails(self, data: st.DataObject) -> None:
        """A refund that had succeeded fails (the card it went back to was closed): the money
        is the merchant's again (https://docs.stripe.com/refunds#failed-refunds)."""
        refund = data.draw(st.sampled_from(self._standing_refunds()))
        with self._at_stripe(data):
            self.stripe.fail_refund(refund)
        self.ran["refunds failed"] += 1

    @precondition(lambda self: self._open_charges())
    @rule(
        data=st.data(),
        status=st.sampled_from(["needs_response", "won", "lost"]),
        whole=st.booleans(),
    )
    def dispute(self, data: st.DataObject, status: str, whole: bool) -> None:
        """The cardholder disputes what is left of a charge, or part of it; the bank decides
        now or later."""
        charge = data.draw(st.sampled_from(self._open_charges()))
        left = self._left(charge)
        amount = left if whole else data.draw(st.integers(1, left))
        with self._at_stripe(data):
            self.stripe.dispute(charge, status, amount=amount)

    @precondition(lambda self: self._open_disputes())
    @rule(data=st.data(), status=st.sampled_from(["won", "lost"]))
    def bank_decides(self, data: st.DataObject, status: str) -> None:
        dispute = data.draw(st.sampled_from(self._open_disputes()))
        with self._at_stripe(data):
            self.stripe.close_dispute(dispute, status)

    @precondition(lambda self: self._unwarned())
    @rule(data=st.data())
    def early_fraud_warning(self, data: st.DataObject) -> None:
        pack = data.draw(st.sampled_from(self._unwarned()))
        self.warned.add(pack.key)
        with self._at_stripe(data):
            self.stripe.early_fraud_warning(pack.charge)

    @rule()
    def subscribe(self) -> None:
        customer = f"cus_sub{len(self.subscriptions)}"
        sub = self.stripe.create_subscription(customer, created=self.now_s - 2 * 3600)
        self.subscriptions.append(sub["id"])

    @precondition(lambda self: self.subscriptions)
    @rule(data=st.data(), minutes_ago=st.sampled_from([40, 20, 5]))
    def pay_invoice(self, data: st.DataObject, minutes_ago: int) -> None:
        sub = data.draw(st.sampled_from(self.subscriptions))
        paid_at = self.now_s - minutes_ago * MINUTE_S
        with self._at_stripe(data):
            invoice, intent = self.stripe.pay_invoice(sub, INVOICE_AMOUNT, paid_at)
            self.model.invoiced(Invoice(invoice["id"], sub, intent["id"], paid_at))

    @precondition(lambda self: set(self.subscriptions) - self.cancelled)
    @rule(data=st.data(), minutes_ago=st.sampled_from([30, 20, 2]), scheduled=st.booleans())
    def cancel(self, data: st.DataObject, minutes_ago: int, scheduled: bool) -> None:
        """Cancelled now, or first scheduled for the period's end and ended then."""
        sub = data.draw(st.sampled_from(sorted(set(self.subscriptions) - self.cancelled)))
        at = self.now_s - minutes_ago * MINUTE_S
        with self._at_stripe(data):
            if scheduled:
                self.stripe.schedule_cancellation(sub, at - 5 * MINUTE_S, period_end=at)
            self.stripe.cancel_subscription(sub, at)
            self.cancelled.add(sub)

    # -- Stripe's deliveries, the workers, the sweeps ---------------------------------------------

    @precondition(lambda self: self.stripe.events())
    @rule(data=st.data(), again=st.booleans())
    def webhooks(self, data: st.DataObject, again: bool) -> None:
        """Stripe delivers a few events not delivered yet (any of them, in any order), or
        delivers some again; each one to three times."""
        events = self.stripe.events()
        fresh = [e for e in events if e["id"] not in self.delivered]
        pool = events if again or not fresh else fresh
        some = st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique_by=lambda e: e["id"])
        for event in data.draw(some):
            self._deliver(event, data.draw(st.integers(1, 3)))

    @precondition(lambda self: self.queue)
    @rule(data=st.data())
    def work(self, data: st.DataObject) -> None:
        """Workers take a few waiting messages, any of them; the broker loses some."""
        for _ in range(data.draw(st.integers(1, min(4, len(self.queue))))):
            inbox_id = self.queue.pop(data.draw(st.integers(0, len(self.queue) - 1)))
            if not data.draw(st.booleans()):  # else lost: the inbox sweep sends it again
                self._process(inbox_id)

    @rule()
    def inbox_sweep(self) -> None:
        sweep_onto(self.ledger, self.queue, give_up_ms=HOUR_MS)

    @rule(past_the_window=st.booleans())
    def reconciliation(self, past_the_window: bool) -> None:
        """The sweep as the scheduler runs it (looking back 24 hours), now or once every
        payment is past the landing window. The model settles first, from what Stripe holds
        before the sweep (the refunds the sweep makes are its own, not the Dashboard's)."""
        if past_the_window:
            self.model.reconciled_past_window()
        report = reconcile(
            self.ledger,
            self.api,
            catalog=CATALOG,
            policy=self.policy,
            since_s=self.now_s - 24 * 3600,
            at_ms=now_ms() + 2 * HOUR_MS if past_the_window else None,
        )
        assert [d for d in report.decisions if d["action"] == "alert"] == []
        self.ran["reconciliations"] += 1

    # -- checks ---------------------------------------------------------------------------------

    @invariant()
    def balances_match_the_model_and_the_audit_is_clean(self) -> None:
        self.ran["steps"] += 1
        for account in ACCOUNTS:
            assert self.ledger.balance(account) == self.model.balance(account), account
        assert audit(self.ledger.db) == []

    @invariant()
    def subscription_charges_are_kept_or_refunded_as_the_model_says(self) -> None:
        refunded = self.model.refunded_invoices()
        for invoice in self.model.invoices.values():
            charge = self.ledger.subscriptions.charge(invoice.id)
            assert (charge is not None) == invoice.told, invoice.id
            if charge is not None:
                wanted = "refunded" if invoice.id in refunded else "kept"
                assert charge.state == wanted, invoice.id
            refunds = self._refunds_of(invoice.payment_intent)
            assert len(refunds) == (invoice.id in refunded), invoice.id

    def teardown(self) -> None:
        try:
            self._deliver_everything()
            for account in ACCOUNTS:
                assert self.ledger.balance(account) == self.model.balance(account), account
            assert audit(self.ledger.db) == []
            assert self.ledger.inbox.counts().get("pending") is None, "an event was left"
            sent: dict[str | None, set[str]] = {}
            for call in self.stripe.refund_calls:  # one idempotency key, one set of parameters
                sent.setdefault(call.idempotency_key, set()).add(repr(sorted(call.params.items())))
            assert all(len(params) == 1 for params in sent.values()), sent
            for pack in self.model.packs.values():
                held = self.charged_back(pack.charge)  # our refund refused: the dispute decides
                assert pack.landed or pack.refunded or held, (
                    f"{pack.key}: neither landed nor refunded"
                )
                stored = self.ledger.payments.get(pack.key)
                assert stored is not None
                wanted = "refunded" if pack.refunded else "granted" if pack.landed else "paid"
                assert stored.state == wanted, pack.key
                ours = [r for r in self._refunds_of(pack.key) if r["metadata"]]
                assert len(ours) <= 1, pack.key
                if ours:
                    assert ours[0]["metadata"]["refundry_key"] == refund_key(pack.key)
                    failed = [r for r in self._refunds_of(pack.key) if r["status"] == "failed"]
                    assert self._left(pack.charge) == 0 or failed, pack.key  # all went back
            self._count()
        finally:
            self.api.close()
            self.stripe.close()
            self.ledger.db.close()

    # -- helpers ----------------------------------------------------------------------------------

    def _count(self) -> None:
        """What this example came to, summed over the run."""
        packs = self.model.packs.values()
        self.ran["events"] += len(self.delivered)
        self.ran["packs landed"] += sum(p.landed and not p.ours for p in packs)
        self.ran["packs refunded by us"] += sum(p.ours for p in packs)
        self.ran["packs partly reversed"] += sum(
            0 < sum(p.returned.values()) < p.amount for p in packs
        )
        self.ran["invoices refunded"] += len(self.model.refunded_invoices())

    @contextmanager
    def _at_stripe(self, data: st.DataObject) -> Iterator[None]:
        """Something happens at Stripe; then the events it made are sent at once and applied,
        in any order, one to three copies each (most webhooks arrive promptly), or are left
        for later deliveries."""
        since = len(self.stripe.events())
        yield
        made = self.stripe.events()[since:]
        if made and data.draw(st.booleans(), label="told at once"):
            waiting = len(self.queue)
            for event in data.draw(st.permutations(made), label="in the order"):
                self._deliver(event, data.draw(st.integers(1, 3)))
            sent, self.queue = self.queue[waiting:], self.queue[:waiting]
            for inbox_id in sent:
                self._process(inbox_id)

    def _deliver(self, event: Json, copies: int) -> None:
        """What the webhook endpoint does (``report_stripe_webhook``): keep each delivery in
        the inbox under its delivery identity, and enqueue the first."""
        for _ in range(copies):
            recorded = self.ledger.inbox.record(
                id=next(self.inbox_ids),
                kind="payment",
                provider="stripe",
                payload=event,
                delivery_key=delivery_key("stripe", event),
            )
            if recorded.new:
                self.queue.append(recorded.id)
            self.ran["deliveries"] += 1
        self.delivered.add(event["id"])

    def _process(self, inbox_id: str) -> None:
        """What the payments actor (``workers.actors.process_payment``) does with a message."""
        item = self.ledger.inbox.get(inbox_id)
        assert item is not None
        if item.state != "pending":
            return  # a redelivered message: applied already
        subscription_event = parse_subscription_event(item.payload)
        if subscription_event is not None:
            apply_subscription_event(
                self.ledger, subscription_event, gateway=self.api, inbox_id=inbox_id
            )
        else:
            apply_payment_event(
                self.ledger,
                parse_event(item.payload),
                catalog=CATALOG,
                gateway=self.api,
                policy=self.policy,
                inbox_id=inbox_id,
            )
        done = self.ledger.inbox.get(inbox_id)
        assert done is not None and done.state == "processed", item.payload["type"]
        self.model.told(item.payload)

    def _deliver_everything(self) -> None:
        """Stripe delivers every event at least once; the sweep sends again what the broker
        lost; the workers apply everything (our refunds make new events: those too)."""
        while True:
            fresh = [e for e in self.stripe.events() if e["id"] not in self.delivered]
            for event in fresh:
                self._deliver(event, 1)
            self.inbox_sweep()
            if not self.queue:
                return
            while self.queue:
                self._process(self.queue.pop())

    def _open_charges(self) -> list[str]:
        """Charges of packs with money left, undisputed: Stripe refunds no disputed charge,
        and a charge is disputed once."""
        return [
            p.charge
            for p in self.model.packs.values()
            if self._left(p.charge) > 0 and not self.stripe.get(p.charge)["disputed"]
        ]

    def _unwarned(self) -> list[Pack]:
        return [p for p in self.model.packs.values() if p.key not in self.warned]

    def _open_disputes(self) -> list[str]:
        return [d["id"] for d in self.stripe.objects("dispute") if d["status"] == "needs_response"]

    def _left(self, charge: str) -> int:
        found = self.stripe.get(charge)
        return int(found["amount"]) - int(found["amount_refunded"])

    def _refunds_of(self, payment_intent: str) -> list[Json]:
        return [r for r in self.stripe.objects("refund") if r["payment_intent"] == payment_intent]

    # -- what the model reads of Stripe (``StripeView``) ----------------------------------------

    def refunds(self, charge: str) -> Mapping[str, tuple[int, str]]:
        return {
            r["id"]: (r["amount"], r["status"])
            for r in self.stripe.objects("refund")
            if r["charge"] == charge
        }

    def lost_disputes(self, charge: str) -> Mapping[str, int]:
        disputes = self.stripe.objects("dispute")
        return {
            d["id"]: d["amount"] for d in disputes if (d["charge"], d["status"]) == (charge, "lost")
        }

    def open_chargeback(self, charge: str) -> bool:
        disputes = self.stripe.objects("dispute")
        return any(
            d["charge"] == charge and d["status"] in ("needs_response", "under_review")
            for d in disputes
        )

    def charged_back(self, charge: str) -> bool:
        disputes = self.stripe.objects("dispute")
        return any(d["charge"] == charge and not d["is_charge_refundable"] for d in disputes)

    def _standing_refunds(self) -> list[str]:
        """The succeeded refunds of pack charges (ours too), oldest first."""
        charges = {p.charge for p in self.model.packs.values()}
        return [
            r["id"]
            for r in self.stripe.objects("refund")
            if r["charge"] in charges and r["status"] == "succeeded"
        ]


@pytest.mark.parametrize("fresh_ledgers", ["sqlite", "postgresql"], indirect=True)
def test_payments_under_redelivery_any_order_and_sweeps(
    fresh_ledgers: Callable[[], Ledger],
) -> None:
    Payments.ran.clear()
    Payments.ran.update(dict.fromkeys(COUNTED, 0))
    run_machine(Payments, fresh_ledgers, examples=EXAMPLES, steps=STEPS)
    print("payment state machine: " + ", ".join(f"{n} {k}" for k, n in Payments.ran.items()))
    assert Payments.ran["examples"] >= min(EXAMPLES, 2)
