"""Stripe subscription events, pure: a subscription's cancellation, and a paid invoice.

The envelope and fields are read with ``providers/stripe_fields.py``, so a missing
or mistyped field is refused with :class:`~providers.stripe.PayloadUnreadable` naming its full
dotted path, exactly like the pack events. :func:`parse_subscription_event` returns ``None``
for every other event type (``parse_event`` reads those).

**Cancellation.** ``customer.subscription.deleted`` (status ``canceled``) confirms it, and so
does a ``customer.subscription.updated`` whose status is ``canceled``. An update that only
sets ``cancel_at_period_end`` / ``canceled_at`` while the subscription still runs is a
cancellation *scheduled*: parsed, with ``confirmed`` false, as information only. An update
that says nothing of a cancellation is not ours (``None``). The time the subscription stopped
is ``ended_at``, else ``canceled_at``: when a cancellation waits for the period's end,
``canceled_at`` is the time of the request, and the subscription still runs until it ends.

**Invoices.** ``invoice.paid`` and ``invoice.payment_succeeded`` (the same payment, twice).
Since API version 2025-03-31.basil an invoice names its subscription in
``parent.subscription_details.subscription`` and no longer carries ``payment_intent``: its
payments are the expandable ``payments`` list, which webhook events do not carry. Both shapes
are read; ``payment_intent`` is ``None`` when the event does not name it (the handler then
asks the API), and ``subscription_id`` is ``None`` for an invoice of no subscription. The
payment time is ``status_transitions.paid_at``, else the event's own ``created``: an invoice
retried by dunning is paid long after it was made. An event confirmed at Stripe
(``handlers.confirmation``) is read from the invoice as retrieved, whose ``created`` is then
the event's: a paid invoice always has ``paid_at``, and were it missing the earlier time would
only keep a charge, never refund one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from providers.common import lookup
from providers.stripe_fields import Fields, ObjectKind, PayloadUnreadable

__all__ = [
    "CANCELLATION_TYPES",
    "INVOICE_PAID_TYPES",
    "SUBSCRIPTION_EVENT_TYPES",
    "InvoicePaid",
    "SubscriptionCancelled",
    "SubscriptionEvent",
    "parse_subscription_event",
]

CANCELLATION_TYPES: Final = ("customer.subscription.deleted", "customer.subscription.updated")
INVOICE_PAID_TYPES: Final = ("invoice.paid", "invoice.payment_succeeded")
SUBSCRIPTION_EVENT_TYPES: Final = frozenset(CANCELLATION_TYPES + INVOICE_PAID_TYPES)


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionEvent:
    """``about``: the Stripe object the event is about, as on ``providers.stripe.PaymentEvent``."""

    about: ClassVar[tuple[ObjectKind, str] | None] = None

    event_id: str
    type: str
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionCancelled(SubscriptionEvent):
    """A confirmed cancellation (``confirmed``), or one only scheduled (information)."""

    about: ClassVar[tuple[ObjectKind, str] | None] = ("subscription", "subscription_id")

    subscription_id: str
    customer: str
    status: str
    canceled_at: int | None = None
    ended_at: int | None = None
    cancel_at: int | None = None
    cancel_at_period_end: bool = False

    @property
    def confirmed(self) -> bool:
        """The subscription has ended: ``cancelled_at`` is then always known."""
        return self.status == "canceled"

    @property
    def cancelled_at(self) -> int | None:
        """When the subscription stopped (epoch seconds): ``ended_at``, else ``canceled_at``."""
        return self.ended_at if self.ended_at is not None else self.canceled_at


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoicePaid(SubscriptionEvent):
    """A paid invoice; ``amount_paid`` in the smallest currency unit, ``paid_at`` in seconds;
    ``status`` the invoice's own (``paid`` in a genuine event)."""

    about: ClassVar[tuple[ObjectKind, str] | None] = ("invoice", "invoice_id")

    invoice_id: str
    customer: str
    amount_paid: int
    currency: str
    paid_at: int
    subscription_id: str | None = None
    payment_intent: str | None = None
    paid_out_of_band: bool = False
    status: str | None = None


def parse_subscription_event(
    event: Mapping[str, Any],
) -> SubscriptionCancelled | InvoicePaid | None:
    """The typed view of a subscription event; ``None`` for any other type, or for a
    subscription update that says nothing of a cancellation.

    Raises :class:`PayloadUnreadable` naming the first missing or mistyped field.
    """
    if not isinstance(event, Mapping):
        raise PayloadUnreadable("the event is not a JSON object", type=type(event).__name__)
    kind = event.get("type")
    if not isinstance(kind, str) or kind not in SUBSCRIPTION_EVENT_TYPES:
        return None  # parse_event refuses a missing or mistyped type
    event_id = event.get("id")
    reader = Fields(event, "", event_id if isinstance(event_id, str) else None)
    base: dict[str, Any] = {
        "event_id": reader.text("id"),
        "type": reader.text("type"),
        "created": reader.integer("created"),
    }
    raw = reader.mapping("data.object")
    obj = Fields(raw, "data.object.", base["event_id"])
    if base["type"] in INVOICE_PAID_TYPES:
        return _invoice_paid(raw, obj, base)
    return _cancellation(raw, obj, base)


def _cancellation(
    raw: Mapping[str, Any], obj: Fields, base: dict[str, Any]
) -> SubscriptionCancelled | None:
    found = SubscriptionCancelled(
        **base,
        subscription_id=obj.text("id"),
        customer=obj.required_ref("customer"),
        status=obj.text("status"),
        canceled_at=obj.opt_integer("canceled_at"),
        ended_at=obj.opt_integer("ended_at"),
        cancel_at=obj.opt_integer("cancel_at"),
        cancel_at_period_end=_opt_flag(raw, obj, "cancel_at_period_end"),
    )
    if base["type"] == "customer.subscription.deleted" and not found.confirmed:
        raise obj._refuse("status", found.status)
    if found.confirmed:
        if found.cancelled_at is None:
            raise obj._refuse("canceled_at", None)
        return found
    if found.cancel_at_period_end or found.canceled_at is not None:
        return found  # scheduled: information only
    return None


def _invoice_paid(raw: Mapping[str, Any], obj: Fields, base: dict[str, Any]) -> InvoicePaid:
    paid_at = obj.opt_integer("status_transitions.paid_at")
    return InvoicePaid(
        **base,
        invoice_id=obj.text("id"),
        customer=obj.required_ref("customer"),
        amount_paid=obj.integer("amount_paid"),
        currency=obj.text("currency"),
        paid_at=base["created"] if paid_at is None else paid_at,
        subscription_id=_subscription_of(obj),
        payment_intent=obj.ref("payment_intent") or _paid_intent(raw, obj, base["event_id"]),
        paid_out_of_band=_opt_flag(raw, obj, "paid_out_of_band"),
        status=obj.opt("status"),
    )


def _subscription_of(obj: Fields) -> str | None:
    """The invoice's subscription: where API versions since basil put it, else where older
    ones did; a parent of type ``subscription_details`` must name it."""
    path = "parent.subscription_details.subscription"
    found = obj.ref(path)
    if found is None and obj.opt("parent.type") == "subscription_details":
        raise obj._refuse(path, None)
    return found or obj.ref("subscription")


def _paid_intent(raw: Mapping[str, Any], obj: Fields, event_id: str) -> str | None:
    """The PaymentIntent of the paid entry of an (expanded) ``payments`` list, if any; ``None``
    when the list is absent or holds only its first page (the API is then asked)."""
    entries = lookup(raw, "payments.data")
    if entries is None or lookup(raw, "payments.has_more") is True:
        return None
    if not isinstance(entries, list):
        raise obj._refuse("payments.data", entries)
    found: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise obj._refuse(f"payments.data.{index}", entry)
        item = Fields(entry, f"data.object.payments.data.{index}.", event_id)
        if item.opt("status") in (None, "paid") and item.opt("payment.type") in (
            None,
            "payment_intent",
        ):
            intent = item.ref("payment.payment_intent")
            if intent is not None:
                found.add(intent)
    if len(found) > 1:
        raise obj._refuse("payments.data", f"{len(found)} paid payment intents")
    return found.pop() if found else None


def _opt_flag(raw: Mapping[str, Any], obj: Fields, path: str) -> bool:
    return False if lookup(raw, path) is None else obj.flag(path)
