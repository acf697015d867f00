"""Typed reads of the fields of a Stripe object, pure: each refusal names the field's full
dotted path, so a dead letter says exactly what was missing or mistyped.

Used for webhook events (``providers/stripe.py``, ``providers/stripe_subscriptions.py``) and
for the objects Stripe's API returns (a Checkout Session's line items). Errors::

    RefundryError
    └── PayloadUnreadable     permanent: not a usable Stripe event or object
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ledger.errors import RefundryError
from providers.common import lookup, short

__all__ = ["Fields", "LineItem", "ObjectKind", "PayloadUnreadable", "read_line_items"]

ObjectKind = Literal[
    "checkout.session",
    "payment_intent",
    "charge",
    "dispute",
    "radar.early_fraud_warning",
    "refund",
    "subscription",
    "invoice",
]
"""The ``object`` of each Stripe object an event Refundry acts on can name, as the API spells
it (https://docs.stripe.com/api): what ``providers.stripe_api.StripeAPI.retrieve`` reads."""


class PayloadUnreadable(RefundryError):
    """The signature is genuine but the body is not a readable Stripe event."""

    permanent = True


@dataclass(frozen=True, slots=True)
class LineItem:
    """One line of a Checkout Session: a price bought ``quantity`` times (a whole number ≥ 1).

    Source: the line item object, https://docs.stripe.com/api/checkout/sessions/line_items
    (``price`` is the full Price object there; ``quantity`` may be null in the reference).
    """

    price_id: str
    quantity: int


class Fields:
    """Typed field access on one object; refuses with the full dotted path of the field.

    ``prefix`` is the object's own path inside what was received (``data.object.``);
    ``event_id``, when known, is added to every refusal.
    """

    __slots__ = ("_event_id", "_obj", "_prefix")

    def __init__(self, obj: Mapping[str, Any], prefix: str, event_id: str | None) -> None:
        self._obj = obj
        self._prefix = prefix
        self._event_id = event_id

    def _refuse(self, path: str, value: object) -> PayloadUnreadable:
        problem = "missing field" if value is None else "invalid field"
        extra: dict[str, Any] = {"field": self._prefix + path}
        if value is not None:
            extra["value"] = short(value)
        if self._event_id:
            extra["event_id"] = self._event_id
        return PayloadUnreadable(problem, **extra)

    def text(self, path: str) -> str:
        value = lookup(self._obj, path)
        if not isinstance(value, str) or not value:
            raise self._refuse(path, value)
        return value

    def integer(self, path: str) -> int:
        value = lookup(self._obj, path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._refuse(path, value)
        return value

    def flag(self, path: str) -> bool:
        value = lookup(self._obj, path)
        if not isinstance(value, bool):
            raise self._refuse(path, value)
        return value

    def mapping(self, path: str) -> Mapping[str, Any]:
        value = lookup(self._obj, path)
        if not isinstance(value, Mapping):
            raise self._refuse(path, value)
        return value

    def opt(self, path: str) -> str | None:
        value = lookup(self._obj, path)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self._refuse(path, value)
        return value

    def opt_integer(self, path: str) -> int | None:
        return None if lookup(self._obj, path) is None else self.integer(path)

    def ref(self, path: str) -> str | None:
        """An expandable reference: an id string, or the expanded object carrying its ``id``."""
        value = lookup(self._obj, path)
        if isinstance(value, Mapping):
            return self.text(f"{path}.id")
        return self.opt(path)

    def required_ref(self, path: str) -> str:
        found = self.ref(path)
        if found is None:
            raise self._refuse(path, None)
        return found

    def line_items(self, path: str) -> tuple[LineItem, ...] | None:
        """An expanded ``line_items`` list, when it is here and complete; ``None`` when it is
        absent (webhook events never carry it) or holds only a first page (``has_more``):
        then the full list must be fetched from the API."""
        value = lookup(self._obj, path)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self._refuse(path, value)
        if value.get("has_more") is True:
            return None
        data = value.get("data")
        if not isinstance(data, list):
            raise self._refuse(f"{path}.data", data)
        return read_line_items(data, f"{self._prefix}{path}.data.", self._event_id)


def read_line_items(
    items: list[Any], prefix: str = "line_items.data.", event_id: str | None = None
) -> tuple[LineItem, ...]:
    """The line items of a Checkout Session, as the API lists them (``data`` of
    ``GET /v1/checkout/sessions/{id}/line_items``). Each needs a price and a quantity ≥ 1;
    anything else is refused with :class:`PayloadUnreadable`, never guessed."""
    found: list[LineItem] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise Fields({}, prefix, event_id)._refuse(str(index), item)
        fields = Fields(item, f"{prefix}{index}.", event_id)
        quantity = fields.integer("quantity")
        if quantity < 1:
            raise fields._refuse("quantity", quantity)
        found.append(LineItem(price_id=fields.required_ref("price"), quantity=quantity))
    return tuple(found)
