"""The fake Stripe API's resources: the objects, the routes that read and create them, and the
events their changes emit; the wire rules are in ``fake_stripe_http.py``.

Every object keeps the shape of Stripe's API reference (https://docs.stripe.com/api): a Checkout
Session (https://docs.stripe.com/api/checkout/sessions/object) and its line items
(https://docs.stripe.com/api/checkout/sessions/line_items), a PaymentIntent, a Charge, a Refund,
a Dispute, a Price, an early fraud warning, and an Event
(https://docs.stripe.com/api/events/object) holding a snapshot of its object at the moment
of the change and a ``request`` naming the API request that caused it (nulls when automatic).
An expandable field is absent unless ``expand[]`` asks for it; any other expansion, and any
parameter an endpoint does not take, is refused as Stripe refuses it.
"""

from __future__ import annotations

import copy
import fnmatch
import itertools
import time
from typing import Any

from tests.support.fake_stripe_http import Json, StripeFault, StripeHTTP, int_param, invalid, page

__all__ = ["API_VERSION", "StripeObjects"]

API_VERSION = "2026-06-24.dahlia"
COLLECTIONS = {
    "checkout/sessions": "checkout.session",
    "payment_intents": "payment_intent",
    "charges": "charge",
    "refunds": "refund",
    "disputes": "dispute",
    "events": "event",
    "prices": "price",
    "radar/early_fraud_warnings": "radar.early_fraud_warning",
}
PAGING = {"limit", "starting_after", "ending_before", "expand", "created"}
LIST_FILTERS = {
    "checkout.session": {"payment_intent", "status", "customer"},
    "payment_intent": {"customer"},
    "charge": {"customer", "payment_intent"},
    "refund": {"charge", "payment_intent"},
    "dispute": {"charge", "payment_intent"},
    "event": {"type", "types", "delivery_success"},
    "price": {"active", "currency"},
    "radar.early_fraud_warning": {"charge", "payment_intent"},
}
CREATE_PARAMS = {
    "checkout.session": {
        "mode",
        "line_items",
        "customer",
        "client_reference_id",
        "metadata",
        "payment_intent_data",
        "success_url",
        "cancel_url",
    },
    "payment_intent": {"amount", "currency", "customer", "metadata", "confirm", "payment_method"},
    "refund": {"payment_intent", "charge", "amount", "reason", "metadata"},
}
STRIPE_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
Opt = str | None


class StripeObjects(StripeHTTP):
    """The API's state; :class:`~tests.support.fake_stripe.FakeStripe` adds what customers
    and the Dashboard do to it."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        self._objects: dict[str, Json] = {}
        self._line_items: dict[str, list[Json]] = {}
        self._request: tuple[Opt, Opt] = (None, None)

    # -- the API ----------------------------------------------------------------------------------

    def _route(self, method: str, path: str, params: Json, request_id: str, key: Opt) -> Json:
        rest = path.removeprefix("/v1/")
        collection = next((c for c in COLLECTIONS if rest == c or rest.startswith(c + "/")), None)
        unknown = StripeFault(f"Unrecognized request URL ({method}: {path}).", None, None, 404)
        if rest == path or collection is None:
            raise unknown
        kind, tail = COLLECTIONS[collection], rest[len(collection) + 1 :]
        object_id, _, sub = tail.partition("/")
        if method == "GET" and object_id and sub == "line_items" and kind == "checkout.session":
            _allow(params, PAGING - {"created"})
            self._found(object_id, kind)
            return page(list(self._line_items[object_id]), path, params, copy.deepcopy)
        if sub:
            raise unknown
        if method == "GET" and object_id:
            _allow(params, {"expand"})
            return self._render(self._found(object_id, kind), params, "")
        if method == "GET":
            _allow(params, PAGING | LIST_FILTERS[kind])
            return self._list(kind, path, params)
        if method != "POST" or object_id or kind not in CREATE_PARAMS:
            raise unknown
        _allow(params, CREATE_PARAMS[kind])
        self._request = (request_id, key)
        try:
            if kind == "refund":
                return copy.deepcopy(self._create_refund(params))
            if kind == "payment_intent":
                return copy.deepcopy(self._create_intent(params))
            return self._render(self._create_session(params, None), {}, "")
        finally:
            self._request = (None, None)

    def _found(self, object_id: str, kind: str) -> Json:
        found = self._objects.get(object_id, {})
        if found.get("object") != kind:
            raise StripeFault(f"No such {kind}: '{object_id}'", "id", "resource_missing", 404)
        return found

    def _list(self, kind: str, url: str, params: Json) -> Json:
        items = [o for o in reversed(self._objects.values()) if o["object"] == kind]
        items.sort(key=lambda o: o["created"], reverse=True)  # stable: newest stored first
        for name in LIST_FILTERS[kind] - {"type", "types", "delivery_success"}:
            if isinstance(params.get(name), str):
                items = [o for o in items if str(o.get(name)).lower() == params[name].lower()]
        items = [o for o in items if _in_range(o["created"], params.get("created"))]
        types = [params["type"]] if "type" in params else list(params.get("types") or [])
        if types:
            items = [o for o in items if any(fnmatch.fnmatchcase(o["type"], t) for t in types)]
        return page(items, url, params, lambda o: self._render(o, params, "data."))

    def _render(self, obj: Json, params: Json, prefix: str) -> Json:
        """The object as the API returns it: expandable fields only when asked for."""
        out = copy.deepcopy(obj)
        for wanted in params.get("expand") or []:
            if obj["object"] != "checkout.session" or wanted != f"{prefix}line_items":
                raise invalid(f"This property cannot be expanded ({wanted}).", "expand", "")
            url = f"/v1/checkout/sessions/{obj['id']}/line_items"
            out["line_items"] = page(list(self._line_items[obj["id"]]), url, {}, copy.deepcopy)
        return out

    # -- objects ----------------------------------------------------------------------------------

    def _store(self, prefix: str, kind: str, created: int | None, **fields: Any) -> Json:
        when = int(time.time()) if created is None else created
        obj_id = prefix if kind == "price" else f"{prefix}_fake{next(self._ids):010d}"
        obj = {"id": obj_id, "object": kind, "created": when, "livemode": False, **fields}
        self._objects[obj_id] = obj
        return obj

    def _emit(self, kind: str, obj: Json, created: int | None = None) -> None:
        """The event for a change of ``obj``, holding its snapshot as it is now."""
        request_id, key = self._request
        event = self._store("evt", "event", created, type=kind, api_version=API_VERSION)
        event.update(data={"object": copy.deepcopy(obj)}, pending_webhooks=1)
        event["request"] = {"id": request_id, "idempotency_key": key}

    def _line_item(self, price_id: str, quantity: int) -> Json:
        price = self._objects.get(price_id, {})
        if price.get("object") != "price":
            raise StripeFault(f"No such price: '{price_id}'", "line_items", "resource_missing")
        amount = price["unit_amount"] * quantity
        item: Json = {"id": f"li_fake{next(self._ids):010d}", "object": "item"}
        item.update(amount_discount=0, amount_subtotal=amount, amount_tax=0, amount_total=amount)
        item.update(currency=price["currency"], description=price["product"])
        item.update(price=copy.deepcopy(price), quantity=quantity)
        return item

    def _create_session(self, params: Json, created: int | None) -> Json:
        wanted = params.get("line_items")
        if not isinstance(wanted, list) or not wanted:
            raise invalid("Missing required param: line_items.", "line_items", "parameter_missing")
        items = [
            self._line_item(str(i.get("price")), int_param(i, "quantity", 1, 1)) for i in wanted
        ]
        total = sum(item["amount_total"] for item in items)
        session = self._store("cs_test", "checkout.session", created, mode="payment")
        session.update(status="open", payment_status="unpaid", payment_intent=None)
        session.update(amount_subtotal=total, amount_total=total, currency=items[0]["currency"])
        session.update(customer=params.get("customer"), metadata=params.get("metadata") or {})
        session["client_reference_id"] = params.get("client_reference_id")
        session["expires_at"] = session["created"] + 86_400
        session["url"] = f"https://checkout.stripe.com/c/pay/{session['id']}"
        session["success_url"] = params.get("success_url")
        self._line_items[session["id"]] = items
        return session

    def _intent(self, amount: int, currency: str, customer: Any, when: int | None) -> Json:
        intent = self._store("pi", "payment_intent", when, amount=amount, currency=currency)
        intent.update(customer=customer, metadata={}, latest_charge=None, amount_received=0)
        intent.update(status="requires_payment_method", payment_method_types=["card"])
        return intent

    def _succeed(self, intent: Json, when: int | None) -> Json:
        """The PaymentIntent's money arrives: its Charge succeeds, then the intent."""
        amount, currency = intent["amount"], intent["currency"]
        charge = self._store("ch", "charge", when, amount=amount, currency=currency)
        charge.update(amount_captured=amount, amount_refunded=0, refunded=False, paid=True)
        charge.update(captured=True, disputed=False, status="succeeded", metadata={})
        charge.update(customer=intent["customer"], payment_intent=intent["id"])
        fingerprint = f"Fp{(intent['customer'] or 'guest')[-12:]}"
        card = {"brand": "visa", "last4": "4242", "fingerprint": fingerprint}
        charge["payment_method_details"] = {"type": "card", "card": card}
        intent.update(amount_received=amount, status="succeeded", latest_charge=charge["id"])
        self._emit("charge.succeeded", charge, when)
        self._emit("payment_intent.succeeded", intent, when)
        return charge

    def _create_intent(self, params: Json, created: int | None = None) -> Json:
        amount = int_param(params, "amount", 0, 1)
        customer = params.get("customer")
        intent = self._intent(amount, params.get("currency", "usd"), customer, created)
        intent["metadata"] = params.get("metadata") or {}
        self._emit("payment_intent.created", intent, created)
        if params.get("confirm") == "true":
            self._succeed(intent, created)
        return intent

    def _create_refund(self, params: Json) -> Json:
        intent = self._objects.get(params.get("payment_intent") or "", {})
        charge = self._objects.get(intent.get("latest_charge") or params.get("charge") or "", {})
        if charge.get("object") != "charge":
            message = f"No such payment_intent: '{params.get('payment_intent')}'"
            raise StripeFault(message, "payment_intent", "resource_missing", 404)
        if params.get("reason") not in (None, *STRIPE_REASONS):
            raise invalid("Invalid reason", "reason", "parameter_invalid_string")
        left = charge["amount"] - charge["amount_refunded"]
        amount = int_param(params, "amount", max(left, 1), 1)
        if amount > left:
            code = "amount_too_large" if left else "charge_already_refunded"
            message = f"Refund amount ({amount}) is greater than the unrefunded amount ({left})"
            raise StripeFault(message, "amount" if left else None, code)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        refund = self._store("re", "refund", None, amount=amount, currency=charge["currency"])
        refund.update(charge=charge["id"], payment_intent=charge["payment_intent"])
        refund.update(reason=params.get("reason"), status="succeeded", failure_reason=None)
        refund["metadata"] = params.get("metadata") or {}
        self._emit("refund.created", refund)
        self._emit("charge.refunded", charge)
        return refund


def _allow(params: Json, allowed: set[str]) -> None:
    """Stripe refuses a parameter the endpoint does not take."""
    for name in params:
        if name not in allowed:
            raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")


def _in_range(created: int, wanted: Any) -> bool:
    if not isinstance(wanted, dict):
        return wanted is None or created == int(wanted)
    ops = {"gt": created.__gt__, "gte": created.__ge__, "lt": created.__lt__, "lte": created.__le__}
    return all(ops[op](int(bound)) for op, bound in wanted.items() if op in ops)
