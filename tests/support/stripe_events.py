"""Stripe events as Stripe delivers them, built from the fake Stripe's own objects, and a
plain look at the pack entries a purchase left in the ledger (SQLite or PostgreSQL).

The entries are read over a connection of their own, with SQL of the test's own: the
ledger's named queries are what is under test.
"""

from __future__ import annotations

import copy
import sqlite3
import uuid
from collections.abc import Mapping
from typing import Any

import psycopg

from handlers.subscriptions import apply_subscription_event
from ledger import Ledger
from ledger.payments import refund_key
from providers.stripe_api import StripeAPI
from providers.stripe_subscriptions import parse_subscription_event
from tests.support.fake_stripe import API_VERSION, FakeStripe

__all__ = [
    "apply_subscription",
    "bought",
    "entry_versions",
    "envelope",
    "pack_entries",
    "paid_events",
]

Json = dict[str, Any]


def envelope(kind: str, obj: Mapping[str, Any], *, created: int | None = None) -> Json:
    """The event Stripe would send for ``obj`` (a fresh event id each time, as a retried
    delivery of a *new* event would carry); ``created`` defaults to the object's own. With an
    object the fake does not hold, or holds otherwise, it is a forged event: Refundry then
    acts on the object as the fake's API returns it, or refuses."""
    return {
        "id": f"evt_test{uuid.uuid4().hex[:20]}",
        "object": "event",
        "type": kind,
        "created": int(obj["created"] if created is None else created),
        "livemode": False,
        "api_version": API_VERSION,
        "pending_webhooks": 1,
        "data": {"object": copy.deepcopy(dict(obj))},
    }


def bought(fake: FakeStripe, account: str, price: str, amount: int) -> tuple[Json, Json, Json]:
    """A paid pack bought by its own customer (so no two purchases look like duplicates):
    the Checkout Session, its PaymentIntent and its Charge."""
    return fake.create_paid_checkout(account, price, amount, customer=f"cus_{account}")


def paid_events(session: Json, intent: Json) -> list[Json]:
    """The events Stripe sends for one paid purchase."""
    return [
        envelope("checkout.session.completed", session),
        envelope("checkout.session.async_payment_succeeded", session),
        envelope("payment_intent.succeeded", intent),
    ]


def apply_subscription(ledger: Ledger, event: Mapping[str, Any], gateway: StripeAPI) -> str:
    """Parse a subscription event and apply it, as the worker does."""
    parsed = parse_subscription_event(event)
    assert parsed is not None, event.get("type")
    return apply_subscription_event(ledger, parsed, gateway=gateway)


_ENTRIES = "SELECT kind, amount, account_id FROM entries WHERE purchase_key = {p} ORDER BY id"


def pack_entries(url: str, purchase_key: str) -> list[tuple[str, int, str]]:
    """``(kind, amount, account)`` of every ledger entry of one purchase, oldest first."""
    rows = _entry_rows(url, _ENTRIES, purchase_key)
    return [(str(kind), int(amount), str(account)) for kind, amount, account in rows]


def entry_versions(url: str, *, purchase_key: str = "", generation_id: str = "") -> list[str]:
    """``kind:policy_version`` of every ledger entry of one purchase or generation."""
    column, value = (
        ("purchase_key", purchase_key) if purchase_key else ("generation_id", generation_id)
    )
    sql = "SELECT kind, policy_version FROM entries WHERE " + column + " = {p} ORDER BY id"
    return [f"{kind}:{version}" for kind, version in _entry_rows(url, sql, value)]


def _entry_rows(url: str, sql: str, value: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (one ``{p}`` parameter: ``value``) in the ledger at ``url``."""
    if url.startswith(("postgresql://", "postgres://")):
        with psycopg.connect(url, options="-c search_path=refundry") as conn:
            return conn.execute(sql.format(p="%s").encode(), (value,)).fetchall()
    conn_ = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return conn_.execute(sql.format(p="?"), (value,)).fetchall()
    finally:
        conn_.close()


def refunded_once_as_unlanded(fake: FakeStripe, payment_intent: str, amount: int) -> None:
    """Stripe holds one refund of the purchase, of ``amount`` (minor unit), made by Refundry as
    an unlanded pack's under the purchase's one idempotency key."""
    (refund,) = fake.objects("refund")
    assert (refund["payment_intent"], refund["amount"]) == (payment_intent, amount)
    assert refund["metadata"] == {
        "refundry_reason": "unlanded_pack",
        "refundry_key": refund_key(payment_intent),
    }
    assert {c.idempotency_key for c in fake.refund_calls} == {refund_key(payment_intent)}
