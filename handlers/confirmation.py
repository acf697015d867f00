"""A Stripe event moves money only as Stripe's API confirms it: the posted event is a hint.

Anyone who can reach a door (``workers.client.report_payment``, a forwarded webhook, the
ingress, a row in the inbox) can post a well-formed event; a valid signature proves who
posted it, not that Stripe made the charge it names. So before a payment event is applied,
the object it names is retrieved by its id with our key, and the event is read again from
that object, through the same parser, by :func:`confirm_payment_event` and
:func:`confirm_subscription_event`. Every decision the handlers take (paid or not, which pack,
whose account, which refunds, lost or won, cancelled when, paid when) rests on what the API
returned; of the posted event only its id and type are kept. One retrieve per event:

- ``checkout.session.*``: the Checkout Session, its ``line_items`` and ``payment_intent``
  expanded → mode, payment status, amount, account, pack, charge;
- ``payment_intent.succeeded``: the PaymentIntent → status, amount, customer, metadata, charge;
- ``charge.refunded``: the Charge → its PaymentIntent and amount (its refunds are then listed);
- ``charge.dispute.closed``: the Dispute → status, amount, charge, PaymentIntent;
- ``radar.early_fraud_warning.created``: the early fraud warning → its charge, PaymentIntent;
- ``refund.*``: the Refund → status, amount, charge, PaymentIntent, failure reason;
- ``customer.subscription.*`` (a cancellation): the Subscription → status, ``canceled_at``,
  ``ended_at``;
- ``invoice.paid`` / ``invoice.payment_succeeded``: the Invoice, its ``payments`` expanded →
  status, subscription, customer, amount, paid time, PaymentIntent.

The time of a confirmed event is its object's ``created`` at Stripe (as reconciliation reads
it), never the posted ``created``. An event that, as posted, moves nothing is not fetched:
an ignored type, a Checkout Session not in ``payment`` mode, a cancellation only scheduled,
an invoice of no subscription.

Refusals, all permanent (dead letters, nothing applied): an id Stripe does not know (404) is
``NotAtPaymentProvider``; an object whose state belies the event's type (a PaymentIntent not
``succeeded``, an invoice not ``paid``, a subscription not ``canceled``, a session paid told
as failed or unpaid told as paid) is ``EventNotConfirmed``. An outage (5xx, 429, a timeout)
is ``PaymentProviderUnavailable``: the event is retried. Without ``STRIPE_API_KEY`` nothing
can be confirmed: the gateway refuses with ``ConfigurationError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from ledger.errors import EventNotConfirmed, NotAtPaymentProvider
from providers.stripe import CheckoutSession, PaymentEvent, api_event, parse_event
from providers.stripe_api import NoSuchObject
from providers.stripe_fields import ObjectKind
from providers.stripe_subscriptions import (
    InvoicePaid,
    SubscriptionCancelled,
    SubscriptionEvent,
    parse_subscription_event,
)

__all__ = ["EventSource", "confirm_payment_event", "confirm_subscription_event"]

_MUST_SAY: Final[dict[str, tuple[str, frozenset[str]]]] = {
    "payment_intent.succeeded": ("status", frozenset({"succeeded"})),
    "checkout.session.async_payment_succeeded": ("payment_status", frozenset({"paid"})),
    "checkout.session.async_payment_failed": ("payment_status", frozenset({"unpaid"})),
    "invoice.paid": ("status", frozenset({"paid"})),
    "invoice.payment_succeeded": ("status", frozenset({"paid"})),
    "customer.subscription.deleted": ("status", frozenset({"canceled"})),
    "customer.subscription.updated": ("status", frozenset({"canceled"})),  # only these fetched
}
"""Event type → the field of the retrieved object, and the values it must hold for the event
to be true. Each of these states is final at Stripe, so a genuine event never fails it."""


class EventSource(Protocol):
    """What confirming needs of the payment provider's API (``providers.stripe_api``)."""

    def retrieve(self, kind: ObjectKind, object_id: str) -> dict[str, Any]: ...


def confirm_payment_event(event: PaymentEvent, source: EventSource) -> PaymentEvent:
    """``event`` as Stripe's API confirms it: read again from the object it names, retrieved
    now with our key; unchanged when it moves nothing as posted (see the module docstring).

    Raises ``NotAtPaymentProvider``, ``EventNotConfirmed``, ``PayloadUnreadable`` (the object
    is not one Refundry can read), and the API's errors (``PaymentProviderUnavailable`` is
    transient).
    """
    if isinstance(event, CheckoutSession) and event.mode != "payment":
        return event  # not a pack purchase as posted: ignored, nothing to confirm
    obj = _retrieved(event, source)
    if obj is None:
        return event
    return parse_event(api_event(event.type, obj, event.event_id))


def confirm_subscription_event(
    event: SubscriptionCancelled | InvoicePaid, source: EventSource
) -> SubscriptionCancelled | InvoicePaid:
    """The subscription event as Stripe's API confirms it, like :func:`confirm_payment_event`;
    a cancellation only scheduled and an invoice of no subscription move nothing and are
    returned unchanged."""
    if isinstance(event, SubscriptionCancelled) and not event.confirmed:
        return event
    if isinstance(event, InvoicePaid) and event.subscription_id is None:
        return event
    obj = _retrieved(event, source)
    assert obj is not None  # both kinds name their object
    confirmed = parse_subscription_event(api_event(event.type, obj, event.event_id))
    assert confirmed is not None  # a cancelled subscription, a paid invoice: both are read
    return confirmed


def _retrieved(
    event: PaymentEvent | SubscriptionEvent, source: EventSource
) -> Mapping[str, Any] | None:
    """The object the event names, as Stripe holds it, once it is the one asked for and in
    the state the event's type claims; ``None`` when the event names none."""
    if event.about is None:
        return None
    kind, field = event.about
    object_id = str(getattr(event, field))
    said = {"event_id": event.event_id, "type": event.type, "object": kind, "id": object_id}
    try:
        obj = source.retrieve(kind, object_id)
    except NoSuchObject as exc:
        raise NotAtPaymentProvider(**said) from exc
    if not isinstance(obj, Mapping) or (obj.get("object"), obj.get("id")) != (kind, object_id):
        found = obj.get("object") if isinstance(obj, Mapping) else type(obj).__name__
        raise EventNotConfirmed("another object came back", **said, found=found)
    if event.type in _MUST_SAY:
        name, wanted = _MUST_SAY[event.type]
        if obj.get(name) not in wanted:
            raise EventNotConfirmed(**said, **{name: obj.get(name)})
    return obj
