"""The fake Stripe API's resources: the objects, the routes that read and create them, and the
events their changes emit; the wire rules are in ``fake_stripe_http.py``.

Every object keeps the shape of Stripe's API reference (https://docs.stripe.com/api): a Checkout
Session (https://docs.stripe.com/api/checkout/sessions/object) and its line items
(https://docs.stripe.com/api/checkout/sessions/line_items), a PaymentIntent, a Charge, a Refund,
a Dispute, a Price, an early fraud warning, a Subscription, an Invoice, and an Event
(https://docs.stripe.com/api/events/object) holding a snapshot of its object at the moment
of the change and a ``request`` naming the API request that caused it (nulls when automatic).
Each is retrieved by its id (``GET /v1/<collection>/<id>``); an id the account does not have is
a 404 ``resource_missing`` (https://docs.stripe.com/error-codes/resource-missing). An expandable
field is absent unless ``expand[]`` asks for it (https://docs.stripe.com/expand): a session's
``line_items`` and ``payment_intent``, an invoice's ``payments`` (a list's first page, as
Stripe includes it); any other expansion, and any parameter an endpoint does not take, is
refused as Stripe refuses it.
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
    "subscriptions": "subscription",
    "invoices": "invoice",
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
    "subscription": {"customer", "status"},
    "invoice": {"customer", "status"},
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
EXPANDABLE = {
    "checkout.session": ("line_items", "payment_intent", "invoice", "payment_link"),
    "payment_intent": ("latest_charge",),
    "charge": ("payment_intent", "balance_transaction", "refunds"),
    "refund": ("charge", "payment_intent", "balance_transaction"),
    "dispute": ("charge", "payment_intent"),
    "radar.early_fraud_warning": ("charge", "payment_intent"),
    "invoice": ("payments",),
}
"""The fields each object may have expanded (its id fields of other objects, and a Checkout
Session's ``line_items``); any other is refused, as Stripe refuses it."""
_UNSET_SESSION_FIELDS = dict.fromkeys(
    (
        "after_expiration",
        "allow_promotion_codes",
        "billing_address_collection",
        "consent",
        "consent_collection",
        "customer_email",
        "presentment_details",
        "recovered_from",
        "setup_intent",
        "shipping_address_collection",
        "shipping_cost",
        "submit_type",
        "subscription",
    )
)
"""A Checkout Session's documented fields the fake never sets: present, null
(https://docs.stripe.com/api/checkout/sessions/object); a Charge's ``refunds`` is expandable
since API version 2022-11-15 and absent unless expanded
(https://docs.stripe.com/changelog/2022-11-15), so it is not among a charge's fields."""
_NO_INVOICE_DATA = {
    "account_tax_ids": None,
    "custom_fields": None,
    "description": None,
    "footer": None,
    "issuer": None,
    "metadata": {},
    "rendering_options": None,
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
        self.refund_pending_reason: str | None = None
        """When set (``insufficient_funds``, ``charge_pending``…), every new refund stays
        ``pending`` with that reason until :meth:`FakeStripe.settle_refund`."""

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
            for wanted in params.get("expand") or []:  # no item field this fake can expand
                raise invalid(f"This property cannot be expanded ({wanted}).", "expand", "")
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
        if params.get("delivery_success") in ("true", "false"):  # pending or failed: false
            undelivered = params["delivery_success"] == "false"
            items = [o for o in items if (o["pending_webhooks"] > 0) == undelivered]
        return page(items, url, params, lambda o: self._render(o, params, "data."))

    def _render(self, obj: Json, params: Json, prefix: str) -> Json:
        """The object as the API returns it: expandable fields only when asked for
        (``expand[]``, https://docs.stripe.com/api/expanding_objects): an id field named in
        :data:`EXPANDABLE` becomes the object it names; ``line_items`` appears (first page)."""
        out = copy.deepcopy(obj)
        for wanted in params.get("expand") or []:
            name = wanted.removeprefix(prefix) if wanted.startswith(prefix) else None
            if name not in EXPANDABLE.get(obj["object"], ()):
                raise invalid(f"This property cannot be expanded ({wanted}).", "expand", "")
            if name == "line_items":
                out["line_items"] = self._expanded_line_items(obj)
            elif name == "payments":
                out["payments"] = self._expanded_payments(obj)
            elif name == "refunds":
                out["refunds"] = self._expanded_refunds(obj)
            elif obj.get(name) in self._objects:
                out[name] = copy.deepcopy(self._objects[obj[name]])
        return out

    def _expanded_line_items(self, session: Json) -> Json:
        url = f"/v1/checkout/sessions/{session['id']}/line_items"
        return page(list(self._line_items[session["id"]]), url, {}, copy.deepcopy)

    def _expanded_refunds(self, charge: Json) -> Json:
        found = [
            o
            for o in reversed(self._objects.values())
            if o["object"] == "refund" and o["charge"] == charge["id"]
        ]
        return page(found, f"/v1/charges/{charge['id']}/refunds", {}, copy.deepcopy)

    def _expanded_payments(self, invoice: Json) -> Json:
        found = [
            o
            for o in reversed(self._objects.values())
            if o["object"] == "invoice_payment" and o["invoice"] == invoice["id"]
        ]
        url = f"/v1/invoice_payments?invoice={invoice['id']}"
        return page(found, url, {}, copy.deepcopy)

    # -- objects ----------------------------------------------------------------------------------

    def _store(self, prefix: str, kind: str, created: int | None, **fields: Any) -> Json:
        when = int(time.time()) if created is None else created
        obj_id = prefix if kind == "price" else f"{prefix}_fake{next(self._ids):010d}"
        obj = {"id": obj_id, "object": kind, "created": when, "livemode": False, **fields}
        self._objects[obj_id] = obj
        return obj

    def _emit(
        self, kind: str, obj: Json, created: int | None = None, previous: Json | None = None
    ) -> None:
        """The event for a change of ``obj``, holding its snapshot as it is now; an
        ``*.updated`` event also holds ``previous``, the changed fields' values before
        (``data.previous_attributes``, https://docs.stripe.com/api/events/object)."""
        request_id, key = self._request
        event = self._store("evt", "event", created, type=kind, api_version=API_VERSION)
        event.update(data={"object": copy.deepcopy(obj)}, pending_webhooks=1)
        if previous is not None:
            event["data"]["previous_attributes"] = copy.deepcopy(previous)
        event["request"] = {"id": request_id, "idempotency_key": key}

    def _line_item(self, price_id: str, quantity: int, percent_off: int = 0) -> Json:
        price = self._objects.get(price_id, {})
        if price.get("object") != "price":
            raise StripeFault(f"No such price: '{price_id}'", "line_items", "resource_missing")
        amount = price["unit_amount"] * quantity
        off = amount * percent_off // 100
        item: Json = {"id": f"li_fake{next(self._ids):010d}", "object": "item"}
        item.update(amount_discount=off, amount_subtotal=amount, amount_tax=0)
        item.update(amount_total=amount - off, currency=price["currency"], metadata={})
        item["description"] = price["product"]
        item.update(price=copy.deepcopy(price), quantity=quantity)
        return item

    def _create_session(self, params: Json, created: int | None) -> Json:
        wanted = params.get("line_items")
        if not isinstance(wanted, list) or not wanted:
            raise invalid("Missing required param: line_items.", "line_items", "parameter_missing")
        off = int(params.get("percent_off") or 0)  # a coupon's, set by the fake's customer
        items = [
            self._line_item(str(i.get("price")), int_param(i, "quantity", 1, 1), off)
            for i in wanted
        ]
        subtotal = sum(item["amount_subtotal"] for item in items)
        total = sum(item["amount_total"] for item in items)
        session = self._store("cs_test", "checkout.session", created, mode="payment")
        session.update(status="open", payment_status="unpaid", payment_intent=None)
        session.update(amount_subtotal=subtotal, amount_total=total, currency=items[0]["currency"])
        session.update(customer=params.get("customer"), metadata=params.get("metadata") or {})
        session["client_reference_id"] = params.get("client_reference_id")
        session["expires_at"] = session["created"] + 86_400
        session["url"] = f"https://checkout.stripe.com/c/pay/{session['id']}"
        session["success_url"] = params.get("success_url")
        session.update(customer_creation="if_required", customer_details=None, invoice=None)
        session.update(payment_link=None, payment_method_types=["card"], locale=None)
        discounts = [{"coupon": f"co_fake{off}off", "promotion_code": None}] if off else []
        session.update(discounts=discounts, currency_conversion=None)
        session.update(_UNSET_SESSION_FIELDS, cancel_url=params.get("cancel_url"))
        session.update(automatic_tax={"enabled": False, "liability": None, "status": None})
        session.update(custom_fields=[], shipping_options=[], payment_method_options={})
        session["custom_text"] = dict.fromkeys(
            ("after_submit", "shipping_address", "submit", "terms_of_service_acceptance")
        )
        session["invoice_creation"] = {"enabled": False, "invoice_data": _NO_INVOICE_DATA}
        session.update(payment_method_collection="always", ui_mode="hosted")
        session["phone_number_collection"] = {"enabled": False}
        amounts = {"amount_discount": subtotal - total, "amount_shipping": 0, "amount_tax": 0}
        session["total_details"] = amounts
        self._line_items[session["id"]] = items
        return session

    def _intent(self, amount: int, currency: str, customer: Any, when: int | None) -> Json:
        intent = self._store("pi", "payment_intent", when, amount=amount, currency=currency)
        intent.update(customer=customer, metadata={}, latest_charge=None, amount_received=0)
        intent.update(status="requires_payment_method", payment_method_types=["card"])
        return intent

    def _charge(self, intent: Json, when: int | None, method: str = "card") -> Json:
        """The PaymentIntent's Charge, made ``pending`` (a delayed method's, until it settles:
        https://docs.stripe.com/payments/ach-direct-debit/accept-a-payment)."""
        amount, currency = intent["amount"], intent["currency"]
        charge = self._store("ch", "charge", when, amount=amount, currency=currency)
        charge.update(amount_captured=amount, amount_refunded=0, refunded=False, paid=False)
        charge.update(captured=True, disputed=False, status="pending", metadata={})
        charge.update(customer=intent["customer"], payment_intent=intent["id"])
        charge.update(balance_transaction=f"txn_fake{next(self._ids):010d}", description=None)
        charge.update(failure_code=None, failure_message=None, outcome=None)
        charge["billing_details"] = {"address": None, "email": None, "name": None, "phone": None}
        fingerprint = f"Fp{(intent['customer'] or 'guest')[-12:]}"
        if method == "card":
            details: Json = {"brand": "visa", "last4": "4242", "fingerprint": fingerprint}
        else:
            details = {"bank_name": "STRIPE TEST BANK", "last4": "6789", "fingerprint": fingerprint}
        charge["payment_method_details"] = {"type": method, method: details}
        intent["latest_charge"] = charge["id"]
        return charge

    def _succeed(self, intent: Json, when: int | None) -> Json:
        """The PaymentIntent's money arrives: its Charge (made now for a card, pending since
        the customer paid for a delayed method) succeeds, then the intent."""
        charge = self._objects.get(intent["latest_charge"] or "") or self._charge(intent, when)
        charge.update(status="succeeded", paid=True)
        charge["outcome"] = {"network_status": "approved_by_network", "reason": None}
        charge["outcome"].update(risk_level="normal", seller_message="Payment complete.")
        charge["outcome"]["type"] = "authorized"
        intent.update(amount_received=intent["amount"], status="succeeded")
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
        if any(
            o["object"] == "dispute"
            and o["charge"] == charge["id"]
            and not o["is_charge_refundable"]
            for o in self._objects.values()
        ):
            message = "The charge you're attempting to refund has been charged back."
            raise StripeFault(message, None, "charge_disputed")
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
        pending = self.refund_pending_reason
        refund.update(reason=params.get("reason"), failure_reason=None, pending_reason=pending)
        refund.update(status="pending" if pending else "succeeded", receipt_number=None)
        refund.update(balance_transaction=f"txn_fake{next(self._ids):010d}")
        refund.update(failure_balance_transaction=None, source_transfer_reversal=None)
        refund.update(transfer_reversal=None, destination_details=None)
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
