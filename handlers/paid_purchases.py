"""The purchases Stripe says were paid in a window, each stamped with when it was paid.

Listing Checkout Sessions or PaymentIntents filters on their ``created``, the time the object
was made, not the time it was paid: a session lives up to 24 hours before the customer pays
(https://docs.stripe.com/api/checkout/sessions/object, ``expires_at``), and a delayed method
settles days later (ACH Direct Debit: up to four business days,
https://docs.stripe.com/payments/ach-direct-debit). So the sweep lists, besides the objects
made in the window, the events of the window that say a payment succeeded
(``GET /v1/events``, kept 30 days, https://docs.stripe.com/api/events/list) and reads the
objects they name from the API (the answer the API gives now, never the event's snapshot).

The time of payment is the latest such event's ``created`` (``payment_intent.succeeded``,
``checkout.session.async_payment_succeeded``, or ``checkout.session.completed`` already
paid), else the ``created`` of the PaymentIntent's latest Charge (made when a card pays),
else the object's own. It is computed only for purchases the ledger has no payment time for:
a time already recorded (from the webhook) is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final, Protocol

from providers.stripe import CheckoutSession, PaymentSucceeded, from_api_object, purchase_key

__all__ = ["PAID_EVENTS", "PaidSource", "Purchase", "paid_purchases", "session_paid"]

Purchase = CheckoutSession | PaymentSucceeded

SESSION_PAID: Final = "checkout.session.completed"
INTENT_PAID: Final = "payment_intent.succeeded"
PAID_EVENTS: Final = (SESSION_PAID, "checkout.session.async_payment_succeeded", INTENT_PAID)
"""The event types that say a purchase's payment succeeded."""


class PaidSource(Protocol):
    """What finding paid purchases needs of the payment provider's API
    (``providers.stripe_api``)."""

    def list_paid_sessions(self, created_gte: int) -> Iterator[dict[str, Any]]: ...

    def list_succeeded_payment_intents(self, created_gte: int) -> Iterator[dict[str, Any]]: ...

    def list_events(self, types: Sequence[str], created_gte: int) -> Iterator[dict[str, Any]]: ...

    def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]: ...

    def retrieve_payment_intent(self, payment_intent: str) -> dict[str, Any]: ...

    def retrieve_charge(self, charge: str) -> dict[str, Any]: ...


def session_paid(session: Mapping[str, Any]) -> bool:
    """A complete Checkout Session to fulfil: its money is in, or nothing was to pay."""
    fulfil = session.get("payment_status") in ("paid", "no_payment_required")
    return session.get("status") == "complete" and fulfil


def paid_purchases(
    source: PaidSource, since_s: int, *, paid_time_known: Callable[[str], bool]
) -> list[Purchase]:
    """Every purchase made or paid since ``since_s`` (seconds since the epoch) that is paid
    now, read as its webhook event would be, with ``created`` the time it was paid (unless
    ``paid_time_known(purchase_key)``). Raises the provider's errors."""
    paid_at, named = _paid_events(source, since_s)
    objects = [(SESSION_PAID, s) for s in source.list_paid_sessions(since_s)]
    objects += [(INTENT_PAID, p) for p in source.list_succeeded_payment_intents(since_s)]
    listed = {str(obj["id"]) for _, obj in objects}
    for object_id, event_type in named.items():
        if object_id in listed:
            continue
        if event_type == SESSION_PAID:
            session = source.retrieve_checkout_session(object_id)
            if session_paid(session):
                objects.append((SESSION_PAID, session))
        else:
            intent = source.retrieve_payment_intent(object_id)
            if intent.get("status") == "succeeded":
                objects.append((INTENT_PAID, intent))
    found: list[Purchase] = []
    for event_type, obj in objects:
        event = from_api_object(event_type, obj)
        assert isinstance(event, CheckoutSession | PaymentSucceeded)
        key = purchase_key(event)
        if key is not None and not paid_time_known(key):
            when = paid_at.get(key) or _charge_created(source, event) or event.created
            event = replace(event, created=when)
        found.append(event)
    return found


def _paid_events(source: PaidSource, since_s: int) -> tuple[dict[str, int], dict[str, str]]:
    """From the events of the window that say a payment succeeded: purchase key → the latest
    such event's time, and the objects to read (a session, else its PaymentIntent) → the
    event type to read them as."""
    paid_at: dict[str, int] = {}
    sessions: dict[str, str] = {}
    intents: set[str] = set()
    for event in source.list_events(PAID_EVENTS, since_s):
        obj = event["data"]["object"]
        if obj.get("object") == "checkout.session":
            if obj.get("payment_status") == "unpaid":
                continue  # completed, its delayed payment still pending
            key = obj.get("payment_intent") or obj["id"]
            sessions[str(key)] = str(obj["id"])
        else:
            key = obj["id"]
            intents.add(str(key))
        paid_at[str(key)] = max(paid_at.get(str(key), 0), int(event["created"]))
    named = {session: SESSION_PAID for session in sessions.values()}
    named |= {intent: INTENT_PAID for intent in intents if intent not in sessions}
    return paid_at, named


def _charge_created(source: PaidSource, event: Purchase) -> int | None:
    """When the purchase's latest Charge was made (a card's: when it was paid)."""
    if isinstance(event, PaymentSucceeded):
        charge = event.latest_charge
    elif event.payment_intent is not None:
        latest = source.retrieve_payment_intent(event.payment_intent).get("latest_charge")
        charge = latest.get("id") if isinstance(latest, Mapping) else latest
    else:
        return None
    if not isinstance(charge, str):
        return None
    created = source.retrieve_charge(charge).get("created")
    return created if isinstance(created, int) else None
