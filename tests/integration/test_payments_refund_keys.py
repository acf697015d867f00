"""One idempotency key, one request: every refund call Refundry sends under a key carries the
parameters that key was first sent with. Stripe refuses a key reused with other parameters
(400 ``idempotency_error``, "Keys for idempotent requests can only be used with the same
parameters they were first used with", https://docs.stripe.com/api/idempotent_requests), and
a refund refused that way would never be made. Four decisions refund a purchase, each with
its own ``reason``: a duplicate, an early fraud warning, reconciliation of an unlanded pack,
and the carrying on of one begun earlier; a chargeback refuses them, an outage fails one.
Every order of them, against the local fake Stripe (which keeps each key's parameters as
Stripe does), on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.packs import PackCatalog, PaymentPolicy
from handlers.payments import apply_payment_event
from handlers.reconcile import reconcile
from ledger import Ledger, audit, now_ms
from providers.stripe import parse_event
from providers.stripe_api import IdempotencyKeyReused, PaymentProviderUnavailable, StripeAPI
from tests.support.fake_stripe import FakeStripe
from tests.support.stateful import examples_and_steps

PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
CATALOG = PackCatalog({PRICE: CREDITS})
POLICY = PaymentPolicy(fraud_action="refund_and_revoke", unlanded_action="refund")
EXAMPLES, _ = examples_and_steps(25, 0)
STEPS = ("later_paid", "earlier_paid", "warning", "reconcile", "chargeback", "outage", "won")
Json = dict[str, Any]


class Shop:
    """Two identical packs bought by one customer a minute apart, two hours ago (past the
    landing window), none of their events told yet."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.fake = FakeStripe().start()
        self.fake.add_price(PRICE, AMOUNT)
        self.api = StripeAPI("sk_test_keys", base=self.fake.url, max_network_retries=0)
        t0 = int(time.time()) - 2 * 3600
        self.earlier = self._buy(t0)
        self.later = self._buy(t0 + 60)
        self.since_s = t0 - 60
        self.dispute: str | None = None

    def _buy(self, created: int) -> tuple[Json, Json]:
        session, _, charge = self.fake.create_paid_checkout(
            "acct_keys", PRICE, AMOUNT, customer="cus_keys", created=created
        )
        return session, charge

    def tell(self, events: list[Json]) -> None:
        for event in events:
            # The outage raises: the event is retried later (told again at the end).
            with contextlib.suppress(PaymentProviderUnavailable):
                apply_payment_event(
                    self.ledger,
                    parse_event(event),
                    catalog=CATALOG,
                    gateway=self.api,
                    policy=POLICY,
                )

    def step(self, step: str) -> None:
        later_session, later_charge = self.later
        if step == "later_paid":
            self.tell(self.fake.events("checkout.session.completed", about=later_session["id"]))
        elif step == "earlier_paid":
            self.tell(self.fake.events("checkout.session.completed", about=self.earlier[0]["id"]))
        elif step == "warning":
            warning = self.fake.early_fraud_warning(later_charge["id"])
            self.tell(self.fake.events("radar.early_fraud_warning.created", about=warning["id"]))
        elif step == "reconcile":
            self.reconcile()
        elif step == "chargeback" and not self.fake.get(later_charge["id"])["refunded"]:
            self.dispute = str(self.fake.dispute(later_charge["id"])["id"])
        elif step == "outage":
            self.fake.fault("/v1/refunds", 1, method="POST", status=500, saved=True)
        elif step == "won" and self.dispute is not None:
            self.fake.close_dispute(self.dispute, "won")

    def reconcile(self) -> None:
        reconcile(
            self.ledger,
            self.api,
            catalog=CATALOG,
            policy=POLICY,
            since_s=self.since_s,
            at_ms=now_ms() + 2 * 3_600_000,
        )

    def close(self) -> None:
        self.api.close()
        self.fake.close()
        self.ledger.db.close()


@pytest.mark.parametrize("fresh_ledgers", ["sqlite", "postgresql"], indirect=True)
def test_one_idempotency_key_goes_out_with_one_set_of_parameters_in_every_order(
    fresh_ledgers: Callable[[], Ledger],
) -> None:
    """Kind: one idempotency key sent with different parameters. The two packs' events, a
    fraud warning on the later one, reconciliation, a chargeback on it (Stripe refuses its
    refund: given up), the chargeback won, a 5xx kept under a key: in every order, and then
    everything told again and reconciled. No refund call is ever refused as a key reuse;
    each key carries one set of parameters; one refund of ours at most per purchase."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(order=st.permutations(STEPS))
    def one_order(order: list[str]) -> None:
        shop = Shop(fresh_ledgers())
        try:
            for step in order:
                shop.step(step)
            shop.tell(shop.fake.events())  # every event again, the outage over
            shop.reconcile()
            sent: dict[str, set[tuple[tuple[str, str], ...]]] = defaultdict(set)
            for call in shop.fake.refund_calls:
                assert call.idempotency_key is not None
                sent[call.idempotency_key].add(tuple(sorted(_flat(call.params))))
            assert {k: v for k, v in sent.items() if len(v) > 1} == {}, order
            ours = [
                r["payment_intent"]
                for r in shop.fake.objects("refund")
                if r["metadata"].get("refundry_key")
            ]
            assert len(ours) == len(set(ours)), order  # one refund of ours per purchase
            # A pack whose chargeback is still open stays paid past the window: reconciliation
            # waits for the dispute to decide.
            found = [v for v in audit(shop.ledger.db) if v.check != "pack_unlanded_past_window"]
            assert found == [], order
        finally:
            shop.close()

    one_order()


def _flat(params: Json, prefix: str = "") -> list[tuple[str, str]]:
    """A request's form parameters as (name, value) pairs, nested ones named as Stripe does."""
    out: list[tuple[str, str]] = []
    for name, value in params.items():
        key = f"{prefix}[{name}]" if prefix else name
        if isinstance(value, dict):
            out += _flat(value, key)
        else:
            out.append((key, str(value)))
    return out


def test_a_key_reused_with_other_parameters_is_refused_as_stripe_refuses_it(
    fake: FakeStripe, api: StripeAPI
) -> None:
    """The fake keeps each key's parameters as Stripe does: the check above could fail."""
    session, intent, _ = fake.create_paid_checkout("acct_k", PRICE, AMOUNT, customer="cus_k")
    api.refund_payment(intent["id"], amount=None, reason="duplicate", idempotency_key="k1")
    with pytest.raises(IdempotencyKeyReused):
        api.refund_payment(intent["id"], amount=None, reason="fraudulent", idempotency_key="k1")
    assert session["payment_intent"] == intent["id"]
