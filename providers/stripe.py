"""Stripe webhooks, pure: verify one delivery, then parse its event into a typed ``PaymentEvent``.

No I/O here (the API client is ``providers/stripe_api.py``). stripe-python's ``verify_header``
checks the HMAC (any ``v1`` signature of ``"{t}.{body}"`` keyed with the whole ``whsec_…``
secret); the time window is ours, in both directions: the library rejects only *old* stamps.
:func:`purchase_key` names the purchase a grant is keyed on, so that the several events of one
payment grant once. Errors, under ``RefundryError`` (the secret never appears in one)::

    RefundryError
    ├── SignatureInvalid      permanent: forged, wrong secret, malformed or missing header,
    │                         timestamp too old or in the future
    └── PayloadUnreadable     permanent: the signature is genuine, the body is not a usable event
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from hashlib import sha256
from typing import Any, ClassVar, Final

import stripe

from ledger.errors import ConfigurationError, RefundryError
from providers.common import short
from providers.stripe_fields import Fields, LineItem, ObjectKind, PayloadUnreadable

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "ChargeRefunded",
    "CheckoutSession",
    "DisputeClosed",
    "EarlyFraudWarning",
    "EventKind",
    "LineItem",
    "PayloadUnreadable",
    "PaymentEvent",
    "PaymentSucceeded",
    "RefundUpdated",
    "SignatureInvalid",
    "api_event",
    "from_api_object",
    "parse_event",
    "purchase_key",
    "verify_webhook",
]

DEFAULT_TOLERANCE_S: Final = 300
"""Stripe's own default: a delivery signed more than five minutes away from now is refused."""


class SignatureInvalid(RefundryError):
    """The webhook's signature does not prove that Stripe sent this body just now."""

    permanent = True


class EventKind(StrEnum):
    """What an event means to Refundry; every type not listed here is ``IGNORED``."""

    CHECKOUT_COMPLETED = "checkout.session.completed"
    CHECKOUT_ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
    CHECKOUT_ASYNC_FAILED = "checkout.session.async_payment_failed"
    PAYMENT_SUCCEEDED = "payment_intent.succeeded"
    CHARGE_REFUNDED = "charge.refunded"
    DISPUTE_CLOSED = "charge.dispute.closed"
    EARLY_FRAUD_WARNING = "radar.early_fraud_warning.created"
    REFUND_CREATED = "refund.created"
    REFUND_UPDATED = "refund.updated"
    REFUND_FAILED = "refund.failed"
    IGNORED = "ignored"


def _at(path: str, read: str = "text") -> dict[str, str]:
    """Field metadata: read ``data.object.<path>`` with the ``Fields`` method ``read``."""
    return {"at": path, "read": read}


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentEvent:
    """Any Stripe event; an instance of this base class itself is an ignored event.

    ``about`` names the Stripe object the event is about: its ``object`` type and the field
    holding its id (``None``: about nothing Refundry acts on). It is what
    ``handlers.confirmation`` retrieves before the event may move money.
    """

    about: ClassVar[tuple[ObjectKind, str] | None] = None

    event_id: str
    type: str
    created: int
    kind: EventKind = EventKind.IGNORED


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckoutSession(PaymentEvent):
    """``checkout.session.completed`` / ``.async_payment_succeeded`` / ``.async_payment_failed``.

    ``line_items`` is ``None`` unless the session was read with ``line_items`` expanded and
    complete: webhook events never carry that expandable field, and an expanded list holds only
    its first page (https://docs.stripe.com/api/checkout/sessions/line_items). The pack is then
    fetched from the API. ``metadata_price_id`` is the platform's optional shortcut, a price id
    it put in the session's metadata (quantity one). ``intent_account_id`` and ``latest_charge``
    are read from the session's PaymentIntent when it is expanded (a retrieved session), else
    ``None``.
    """

    about: ClassVar[tuple[ObjectKind, str] | None] = ("checkout.session", "session_id")

    session_id: str = field(metadata=_at("id"))
    mode: str = field(metadata=_at("mode"))
    """``payment`` (a one-time purchase, such as a pack), ``subscription`` or ``setup``."""
    payment_status: str = field(metadata=_at("payment_status"))
    """``paid``, ``unpaid`` (a delayed method still pending) or ``no_payment_required``."""
    amount_total: int = field(metadata=_at("amount_total", "integer"))
    currency: str = field(metadata=_at("currency"))
    payment_intent: str | None = field(default=None, metadata=_at("payment_intent", "ref"))
    client_reference_id: str | None = field(
        default=None, metadata=_at("client_reference_id", "opt")
    )
    account_id: str | None = field(default=None, metadata=_at("metadata.account_id", "opt"))
    customer: str | None = field(default=None, metadata=_at("customer", "ref"))
    line_items: tuple[LineItem, ...] | None = field(
        default=None, metadata=_at("line_items", "line_items")
    )
    metadata_price_id: str | None = field(default=None, metadata=_at("metadata.price_id", "opt"))
    intent_account_id: str | None = field(
        default=None, metadata=_at("payment_intent.metadata.account_id", "opt")
    )
    latest_charge: str | None = field(
        default=None, metadata=_at("payment_intent.latest_charge", "ref")
    )

    @property
    def paid(self) -> bool:
        """True when the order is to be fulfilled: the money is in (``paid``), or nothing was
        to pay (``no_payment_required``: a 100% discount; Stripe's fulfillment guidance
        fulfils whenever ``payment_status`` is not ``unpaid``,
        https://docs.stripe.com/checkout/fulfillment)."""
        fulfil = self.payment_status in ("paid", "no_payment_required")
        return fulfil and self.kind != EventKind.CHECKOUT_ASYNC_FAILED


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentSucceeded(PaymentEvent):
    """``payment_intent.succeeded``. It names no Checkout Session and carries no line items;
    ``account_id`` and ``metadata_price_id`` are set only when the platform put them in the
    PaymentIntent's metadata (``payment_intent_data.metadata`` at session creation).
    ``status`` is the PaymentIntent's own (``succeeded`` in a genuine event)."""

    about: ClassVar[tuple[ObjectKind, str] | None] = ("payment_intent", "payment_intent")

    payment_intent: str = field(metadata=_at("id"))
    amount_received: int = field(metadata=_at("amount_received", "integer"))
    currency: str = field(metadata=_at("currency"))
    customer: str | None = field(default=None, metadata=_at("customer", "ref"))
    account_id: str | None = field(default=None, metadata=_at("metadata.account_id", "opt"))
    metadata_price_id: str | None = field(default=None, metadata=_at("metadata.price_id", "opt"))
    latest_charge: str | None = field(default=None, metadata=_at("latest_charge", "ref"))
    status: str | None = field(default=None, metadata=_at("status", "opt"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeRefunded(PaymentEvent):
    """``charge.refunded``: sent for partial refunds too; ``amount_refunded`` is cumulative and
    ``refunded`` is true only once the whole charge is refunded."""

    about: ClassVar[tuple[ObjectKind, str] | None] = ("charge", "charge_id")

    charge_id: str = field(metadata=_at("id"))
    amount: int = field(metadata=_at("amount", "integer"))
    amount_refunded: int = field(metadata=_at("amount_refunded", "integer"))
    refunded: bool = field(metadata=_at("refunded", "flag"))
    payment_intent: str | None = field(default=None, metadata=_at("payment_intent", "ref"))


@dataclass(frozen=True, slots=True, kw_only=True)
class DisputeClosed(PaymentEvent):
    """``charge.dispute.closed``: ``status`` is ``won``, ``lost`` or ``warning_closed``."""

    about: ClassVar[tuple[ObjectKind, str] | None] = ("dispute", "dispute_id")

    dispute_id: str = field(metadata=_at("id"))
    charge: str = field(metadata=_at("charge", "required_ref"))
    status: str = field(metadata=_at("status"))
    amount: int = field(metadata=_at("amount", "integer"))
    payment_intent: str | None = field(default=None, metadata=_at("payment_intent", "ref"))


@dataclass(frozen=True, slots=True, kw_only=True)
class EarlyFraudWarning(PaymentEvent):
    """``radar.early_fraud_warning.created``."""

    about: ClassVar[tuple[ObjectKind, str] | None] = ("radar.early_fraud_warning", "warning_id")

    warning_id: str = field(metadata=_at("id"))
    charge: str = field(metadata=_at("charge", "required_ref"))
    payment_intent: str | None = field(default=None, metadata=_at("payment_intent", "ref"))


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundUpdated(PaymentEvent):
    """``refund.created`` / ``refund.updated`` / ``refund.failed``, sent for every refund since
    API version 2024-10-28.acacia: ``status`` is ``pending``, ``requires_action``,
    ``succeeded``, ``failed`` or ``canceled``."""

    about: ClassVar[tuple[ObjectKind, str] | None] = ("refund", "refund_id")

    refund_id: str = field(metadata=_at("id"))
    status: str = field(metadata=_at("status"))
    charge: str | None = field(default=None, metadata=_at("charge", "ref"))
    payment_intent: str | None = field(default=None, metadata=_at("payment_intent", "ref"))
    amount: int | None = field(default=None, metadata=_at("amount", "opt_integer"))
    failure_reason: str | None = field(default=None, metadata=_at("failure_reason", "opt"))


_CLASSES: Final[dict[EventKind, type[PaymentEvent]]] = {
    EventKind.CHECKOUT_COMPLETED: CheckoutSession,
    EventKind.CHECKOUT_ASYNC_SUCCEEDED: CheckoutSession,
    EventKind.CHECKOUT_ASYNC_FAILED: CheckoutSession,
    EventKind.PAYMENT_SUCCEEDED: PaymentSucceeded,
    EventKind.CHARGE_REFUNDED: ChargeRefunded,
    EventKind.DISPUTE_CLOSED: DisputeClosed,
    EventKind.EARLY_FRAUD_WARNING: EarlyFraudWarning,
    EventKind.REFUND_CREATED: RefundUpdated,
    EventKind.REFUND_UPDATED: RefundUpdated,
    EventKind.REFUND_FAILED: RefundUpdated,
}


def verify_webhook(
    payload: bytes,
    sig_header: str | None,
    secret: str,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """The event in ``payload`` once its ``Stripe-Signature`` header proves Stripe sent it.

    ``now`` (seconds since the epoch) replaces the clock in tests. The timestamp must lie within
    ``tolerance_s`` of it, before or after. Raises :class:`SignatureInvalid`,
    :class:`PayloadUnreadable`, or ``ConfigurationError`` for an empty secret or tolerance.
    """
    if not isinstance(secret, str) or not secret:
        raise ConfigurationError("no Stripe webhook signing secret")
    if tolerance_s <= 0:
        raise ConfigurationError("webhook tolerance must be positive", tolerance_s=tolerance_s)
    if not isinstance(sig_header, str) or not sig_header:
        raise SignatureInvalid("no Stripe-Signature header")
    timestamp, signatures = _parse_header(sig_header)
    raw = bytes(payload)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None:  # the library cannot take it; check the same HMAC over the exact bytes
        if not _signed_bytes(raw, timestamp, signatures, secret):
            raise SignatureInvalid("no v1 signature matches the body")
    else:
        try:
            stripe.WebhookSignature.verify_header(text, sig_header, secret, tolerance=None)
        except stripe.SignatureVerificationError as exc:
            raise SignatureInvalid("no v1 signature matches the body") from exc
        except (TypeError, ValueError) as exc:  # e.g. a non-ASCII signature to compare
            raise SignatureInvalid("unusable Stripe-Signature header") from exc
    current = time.time() if now is None else now
    if timestamp < current - tolerance_s:
        raise SignatureInvalid("signed too long ago", timestamp=timestamp, tolerance_s=tolerance_s)
    if timestamp > current + tolerance_s:
        raise SignatureInvalid("signed in the future", timestamp=timestamp, tolerance_s=tolerance_s)
    if text is None:
        raise PayloadUnreadable("the body is not UTF-8")
    return _event_dict(text)


def _parse_header(header: str) -> tuple[int, list[str]]:
    """``t`` and the ``v1`` signatures, read exactly as stripe-python reads them."""
    try:
        items = [item.split("=", 2) for item in header.split(",")]
        timestamp = int(next(item[1] for item in items if item[0] == "t"))
        signatures = [item[1] for item in items if item[0] == "v1"]
    except (IndexError, ValueError, StopIteration) as exc:
        raise SignatureInvalid("malformed Stripe-Signature header") from exc
    if not signatures:
        raise SignatureInvalid("no v1 signature in the Stripe-Signature header")
    return timestamp, signatures


def _signed_bytes(raw: bytes, timestamp: int, signatures: list[str], secret: str) -> bool:
    signed = b"%d." % timestamp + raw
    expected = hmac.new(secret.encode("utf-8"), signed, sha256).hexdigest().encode("ascii")
    return any(hmac.compare_digest(expected, sig.encode("utf-8", "replace")) for sig in signatures)


def _event_dict(text: str) -> dict[str, Any]:
    try:
        event = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PayloadUnreadable("the body is not JSON") from exc
    if not isinstance(event, dict):
        raise PayloadUnreadable("the body is not a JSON object", type=type(event).__name__)
    if event.get("object", "event") != "event":
        raise PayloadUnreadable("not a snapshot event", object=short(event.get("object")))
    for name in ("id", "type"):
        if not isinstance(event.get(name), str) or not event[name]:
            raise PayloadUnreadable("missing or invalid field", field=name)
    return event


def parse_event(event: Mapping[str, Any]) -> PaymentEvent:
    """The typed view of a Stripe event; a type Refundry does not act on parses as ``IGNORED``.

    Raises :class:`PayloadUnreadable` naming the first missing or mistyped field.
    """
    if not isinstance(event, Mapping):
        raise PayloadUnreadable("the event is not a JSON object", type=type(event).__name__)
    event_id = event.get("id")
    reader = Fields(event, "", event_id if isinstance(event_id, str) else None)
    base: dict[str, Any] = {
        "event_id": reader.text("id"),
        "type": reader.text("type"),
        "created": reader.integer("created"),
    }
    try:
        kind = EventKind(base["type"])
    except ValueError:
        kind = EventKind.IGNORED
    if kind is EventKind.IGNORED:
        return PaymentEvent(**base)
    obj = Fields(reader.mapping("data.object"), "data.object.", base["event_id"])
    cls = _CLASSES[kind]
    values = {
        f.name: getattr(obj, f.metadata["read"])(f.metadata["at"])
        for f in fields(cls)
        if "at" in f.metadata
    }
    return cls(**base, kind=kind, **values)


def purchase_key(event: PaymentEvent) -> str | None:
    """The id of the purchase this event is about: its PaymentIntent id when the event names one,
    else the Checkout Session id; ``None`` when it names neither (e.g. an ignored event).

    Derive grant and clawback idempotency keys from it, never from the event id: one payment
    arrives as several events with different ids.
    """
    payment_intent = getattr(event, "payment_intent", None)
    if isinstance(payment_intent, str):
        return payment_intent
    if isinstance(event, CheckoutSession):
        return event.session_id
    return None


def api_event(
    event_type: str, obj: Mapping[str, Any], event_id: str | None = None
) -> dict[str, Any]:
    """The event of ``event_type`` that would carry ``obj``, an object as Stripe's API returned
    it: its id is ``event_id`` (default ``api:<object id>``) and its time the object's
    ``created``, never a posted event's. Raises :class:`PayloadUnreadable` for a non-object."""
    if not isinstance(obj, Mapping):
        raise PayloadUnreadable("the object is not a JSON object", type=type(obj).__name__)
    return {
        "id": event_id or f"api:{obj.get('id')}",
        "type": event_type,
        "created": obj.get("created"),
        "data": {"object": obj},
    }


def from_api_object(
    event_type: str, obj: Mapping[str, Any], *, event_id: str | None = None
) -> PaymentEvent:
    """Read an object fetched from Stripe's API (a Checkout Session, a PaymentIntent, a
    Charge…) through the same parser as the webhook event of ``event_type`` that would carry
    it (see :func:`api_event`). Raises :class:`PayloadUnreadable` like :func:`parse_event`."""
    return parse_event(api_event(event_type, obj, event_id))
