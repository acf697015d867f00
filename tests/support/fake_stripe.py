"""A small, stateful fake of the Stripe API (v1) on a real loopback socket.

Checkout Sessions, PaymentIntents, Charges, Refunds, Disputes and Events: create where Refundry
or its tests need it, retrieve, and list (``created[...]``, ``limit``, ``starting_after``,
``has_more``, newest first); form-encoded as stripe-python sends it (``metadata[k]``, ``a[0]``).

Idempotency as Stripe documents it: a POST whose ``Idempotency-Key`` was seen with the same
path and parameters gets the first answer again (``Idempotent-Replayed: true``); with other
parameters, 400 ``idempotency_error``. Scripted faults (:meth:`FakeStripe.fault`) strike before
the idempotency layer, as a load balancer would, unless a hang strikes after the effect.
"""

from __future__ import annotations

import copy
import fnmatch
import itertools
import json
import threading
import time
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.servers import LOOPBACK

__all__ = ["FakeStripe", "Fault", "Seen", "StripeFault"]

API_VERSION = "2026-06-24.dahlia"
PLAIN = ("payment_intent", "charge", "refund", "dispute", "event")
COLLECTIONS = {"checkout/sessions": "checkout.session", **{f"{k}s": k for k in PLAIN}}
STRIPE_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
Json = dict[str, Any]
Opt = str | None


class StripeFault(Exception):
    """An answer in Stripe's error shape; raised inside the fake, sent as the response."""

    def __init__(self, msg: str, param: Opt = None, code: Opt = None, status: int = 400) -> None:
        super().__init__(msg)
        self.status = status
        kind = "api_error" if status >= 500 else "invalid_request_error"
        self.body = {"error": {"type": kind, "code": code, "message": msg, "param": param}}


@dataclass(frozen=True)
class Seen:
    """One request as the fake received it; ``status`` 0: held, then dropped unanswered."""

    method: str
    path: str
    params: Json
    idempotency_key: str | None
    status: int = 0
    replayed: bool = False


@dataclass
class Fault:
    """What :meth:`FakeStripe.fault` does to the next ``times`` requests (``None``: all):
    answer ``status`` (with ``Retry-After: retry_after``), or with ``hang_s`` hold the request
    that long (or until the fake closes) and drop it, after its effect if ``after_effect``."""

    path: str
    times: int | None = 1
    status: int = 500
    retry_after: int | None = None
    hang_s: float | None = None
    after_effect: bool = False


class FakeStripe:
    """Start with :meth:`start`, stop with :meth:`close`; ``url`` is the API base."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._ids = itertools.count(1)
        self._objects: dict[str, Json] = {}
        self._line_items: dict[str, list[Json]] = {}
        self.prices: dict[str, tuple[int, str]] = {}
        self._keys: dict[str, tuple[tuple[Any, ...], int, Json]] = {}
        self._faults: list[Fault] = []
        self._seen: list[Seen] = []
        self._server = ThreadingHTTPServer((LOOPBACK, 0), _handler_for(self))
        self._server.daemon_threads = True
        serve = self._server.serve_forever
        self._thread = threading.Thread(target=serve, args=(0.05,), daemon=True)
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def start(self) -> FakeStripe:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes held requests
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def create_paid_checkout(
        self,
        account_id: str,
        price_id: str,
        amount: int,
        currency: str = "usd",
        customer: str | None = None,
        created: int | None = None,
    ) -> tuple[Json, Json, Json]:
        """A complete, paid Checkout Session with its PaymentIntent and Charge, and the events
        Stripe would send. Returns copies of (session, payment_intent, charge)."""
        metadata = {"account_id": account_id, "price_id": price_id}
        with self._lock:
            self.prices[price_id] = (amount, currency)
            intent = self._payment_intent(amount, currency, customer, metadata, True, created)
            session = self._store("cs_test", "checkout.session", created, mode="payment")
            session.update(status="complete", payment_status="paid", payment_intent=intent["id"])
            session.update(amount_subtotal=amount, amount_total=amount, currency=currency)
            session.update(client_reference_id=account_id, customer=customer, metadata=metadata)
            self._line_items[session["id"]] = [self._line_item(price_id, 1)]
            self._emit("checkout.session.completed", session, created)
            charge = self._objects[intent["latest_charge"]]
            return copy.deepcopy(session), copy.deepcopy(intent), copy.deepcopy(charge)

    def dispute(self, charge_id: str, status: str = "needs_response") -> Json:
        """A dispute on a charge, with its ``charge.dispute.created`` event, or its
        ``charge.dispute.closed`` one when ``status`` is ``won`` or ``lost``."""
        with self._lock:
            charge = self._objects[charge_id]
            dispute = self._store("dp", "dispute", None, charge=charge_id, status=status)
            dispute.update(amount=charge["amount"], currency=charge["currency"], metadata={})
            dispute.update(payment_intent=charge["payment_intent"], reason="fraudulent")
            charge["disputed"] = True
            closed = status in ("won", "lost")
            self._emit(f"charge.dispute.{'closed' if closed else 'created'}", dispute)
            return copy.deepcopy(dispute)

    def fault(self, path: str, times: int | None = 1, **how: Any) -> None:
        """Script a :class:`Fault` for ``path`` (e.g. ``"/v1/refunds"``): answer ``status=500``
        (the default), or 429 with ``retry_after=…``, or hold with ``hang_s=…``."""
        with self._lock:
            self._faults.append(Fault(path, times, **how))

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    @property
    def refund_calls(self) -> list[Seen]:
        """Every ``POST /v1/refunds`` that reached the server, faulted or replayed ones too."""
        return [s for s in self.requests if s.method == "POST" and s.path == "/v1/refunds"]

    def objects(self, kind: str) -> list[Json]:
        """Copies of the stored objects of one ``object`` type (``"refund"``…), oldest first."""
        with self._lock:
            return [copy.deepcopy(o) for o in self._objects.values() if o["object"] == kind]

    def _serve(self, method: str, target: str, headers: Any, body: str) -> tuple[int, Json, Json]:
        """(status, body, extra headers); status 0 means: drop the connection unanswered."""
        url = urlsplit(target)
        pairs = parse_qsl(body if method == "POST" else url.query, keep_blank_values=True)
        key = headers.get("Idempotency-Key") if method == "POST" else None
        seen = Seen(method, url.path.rstrip("/"), _decode(pairs), key)
        fault = self._take_fault(seen)
        if fault is not None and fault.hang_s is None:
            self._seen.append(replace(seen, status=fault.status))
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            code = "rate_limit" if fault.status == 429 else None
            return fault.status, StripeFault("Injected", None, code, fault.status).body, extra
        with self._lock:
            skip = fault is not None and not fault.after_effect
            status, answer, replayed = (0, {}, False) if skip else self._answer(seen, pairs)
        self._seen.append(replace(seen, status=0 if fault else status, replayed=replayed))
        if fault is not None:
            self._closing.wait(fault.hang_s)
            return 0, {}, {}
        return status, answer, {"Idempotent-Replayed": "true"} if replayed else {}

    def _take_fault(self, seen: Seen) -> Fault | None:
        with self._lock:
            fault = next((f for f in self._faults if f.path == seen.path and f.times != 0), None)
            if fault is not None and fault.times is not None:
                fault.times -= 1
            return fault

    def _answer(self, seen: Seen, pairs: list[tuple[str, str]]) -> tuple[int, Json, bool]:
        fingerprint = (seen.method, seen.path, tuple(sorted(pairs)))
        if seen.idempotency_key in self._keys:
            first, status, answer = self._keys[seen.idempotency_key]
            if first == fingerprint:
                return status, copy.deepcopy(answer), True
            message = "Keys for idempotent requests can only be used with the same parameters"
            message += f" they were first used with. Try a key other than {seen.idempotency_key!r}."
            error = StripeFault(message)
            error.body["error"]["type"] = "idempotency_error"
            return 400, error.body, False
        try:
            status, answer = 200, self._route(seen.method, seen.path, seen.params)
        except StripeFault as fault:
            status, answer = fault.status, fault.body
        if seen.idempotency_key is not None:
            self._keys[seen.idempotency_key] = (fingerprint, status, copy.deepcopy(answer))
        return status, answer, False

    def _route(self, method: str, path: str, params: Json) -> Json:
        prefix, _, rest = path.partition("/v1/")
        collection = next((c for c in COLLECTIONS if rest == c or rest.startswith(c + "/")), None)
        unknown = StripeFault(f"Unrecognized request URL ({method}: {path}).", None, None, 404)
        if prefix or collection is None or rest.count("/") > collection.count("/") + 1:
            raise unknown
        object_id, kind = rest[len(collection) + 1 :], COLLECTIONS[collection]
        if method == "GET" and object_id:
            found = self._objects.get(object_id, {})
            if found.get("object") != kind:
                raise StripeFault(f"No such {kind}: {object_id!r}", "id", "resource_missing", 404)
            return self._expanded(found, params, "")
        if method == "GET":
            return self._list(kind, f"/v1/{collection}", params)
        creatable = kind in ("checkout.session", "payment_intent", "refund")
        if method != "POST" or object_id or not creatable:
            raise unknown
        if kind == "refund":
            return copy.deepcopy(self._create_refund(params))
        if kind == "payment_intent":
            amount, metadata = _int(params, "amount", 0, 1), params.get("metadata") or {}
            currency, paid = params.get("currency", "usd"), params.get("confirm") == "true"
            customer = params.get("customer")
            intent = self._payment_intent(amount, currency, customer, metadata, paid, None)
            return copy.deepcopy(intent)
        return copy.deepcopy(self._create_session(params))

    def _list(self, kind: str, url: str, params: Json) -> Json:
        items = [o for o in reversed(self._objects.values()) if o["object"] == kind]
        items.sort(key=lambda o: o["created"], reverse=True)  # stable: newest stored first
        for name in ("status", "payment_intent", "charge", "customer"):
            if isinstance(params.get(name), str):
                items = [o for o in items if o.get(name) == params[name]]
        items = [o for o in items if _in_range(o["created"], params.get("created"))]
        types = [params["type"]] if "type" in params else list(params.get("types") or [])
        if kind == "event" and types:
            items = [o for o in items if any(fnmatch.fnmatchcase(o["type"], t) for t in types)]
        limit, ids = _int(params, "limit", 10, 1), [o["id"] for o in items]
        if params.get("starting_after") not in (None, *ids):
            raise StripeFault("No such object", "starting_after", "resource_missing")
        if "starting_after" in params:
            items = items[ids.index(params["starting_after"]) + 1 :]
        page = [self._expanded(o, params, "data.") for o in items[:limit]]
        return {"object": "list", "data": page, "has_more": len(items) > limit, "url": url}

    def _expanded(self, obj: Json, params: Json, prefix: str) -> Json:
        out, expand = copy.deepcopy(obj), params.get("expand") or []
        if obj["object"] == "checkout.session" and f"{prefix}line_items" in expand:
            url = f"/v1/checkout/sessions/{obj['id']}/line_items"
            data = copy.deepcopy(self._line_items.get(obj["id"], []))
            out["line_items"] = {"object": "list", "data": data, "has_more": False, "url": url}
        return out

    def _store(self, prefix: str, kind: str, created: int | None, **fields: Any) -> Json:
        when = int(time.time()) if created is None else created
        obj_id = f"{prefix}_fake{next(self._ids):010d}"
        obj = {"id": obj_id, "object": kind, "created": when, "livemode": False, **fields}
        self._objects[obj_id] = obj
        return obj

    def _emit(self, kind: str, obj: Json, created: int | None = None) -> None:
        event = self._store("evt", "event", created, type=kind, api_version=API_VERSION)
        event.update(data={"object": copy.deepcopy(obj)}, pending_webhooks=0)

    def _line_item(self, price_id: str, quantity: int) -> Json:
        if price_id not in self.prices:
            raise StripeFault(f"No such price: '{price_id}'", "line_items", "resource_missing")
        amount, currency = self.prices[price_id]
        price = {"id": price_id, "object": "price", "unit_amount": amount, "currency": currency}
        item: Json = {"id": f"li_fake{next(self._ids):010d}", "object": "item", "price": price}
        item.update(quantity=quantity, amount_total=amount * quantity, currency=currency)
        return item

    def _payment_intent(
        self, amount: int, currency: str, customer: Any, metadata: Json, paid: bool, when: Any
    ) -> Json:
        intent = self._store("pi", "payment_intent", when, amount=amount, currency=currency)
        intent.update(customer=customer, metadata=dict(metadata), latest_charge=None)
        intent.update(amount_received=0, status="requires_payment_method")
        if paid:
            charge = self._store("ch", "charge", when, amount=amount, currency=currency)
            charge.update(amount_captured=amount, amount_refunded=0, refunded=False, paid=True)
            charge.update(captured=True, disputed=False, status="succeeded", metadata={})
            charge.update(customer=customer, payment_intent=intent["id"])
            intent.update(amount_received=amount, status="succeeded", latest_charge=charge["id"])
            self._emit("charge.succeeded", charge, when)
            self._emit("payment_intent.succeeded", intent, when)
        return intent

    def _create_session(self, params: Json) -> Json:
        wanted = params.get("line_items")
        if not isinstance(wanted, list) or not wanted:
            raise StripeFault("Missing required param: line_items.", "line_items")
        items = [self._line_item(str(i.get("price")), _int(i, "quantity", 1)) for i in wanted]
        total = sum(item["amount_total"] for item in items)
        session = self._store("cs_test", "checkout.session", None, mode="payment")
        session.update(status="open", payment_status="unpaid", payment_intent=None)
        session.update(amount_subtotal=total, amount_total=total, currency=items[0]["currency"])
        session.update(customer=params.get("customer"), metadata=params.get("metadata") or {})
        session["client_reference_id"] = params.get("client_reference_id")
        self._line_items[session["id"]] = items
        return session

    def _create_refund(self, params: Json) -> Json:
        intent = self._objects.get(params.get("payment_intent") or "", {})
        charge = self._objects.get(intent.get("latest_charge") or params.get("charge") or "", {})
        if charge.get("object") != "charge":
            raise StripeFault("No such payment_intent", "payment_intent", "resource_missing")
        if params.get("reason") not in (None, *STRIPE_REASONS):
            raise StripeFault("Invalid reason", "reason", "parameter_invalid_string")
        left = charge["amount"] - charge["amount_refunded"]
        amount = _int(params, "amount", max(left, 1), 1)
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


def _decode(pairs: list[tuple[str, str]]) -> Json:
    """``a[b][c]=v`` → ``{"a": {"b": {"c": v}}}``; ``a[]=v`` and ``a[0]=v`` → lists."""
    root: Json = {}
    for key, value in pairs:
        *path, last = key.replace("]", "").split("[")
        node = root
        for part in path:
            node = node.setdefault(part, {})
        node[last or str(len(node))] = value
    return _listify(root)  # type: ignore[no-any-return]


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v) for k, v in value.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def _int(params: Json, name: str, default: int, minimum: int = 0) -> int:
    try:
        value = int(params.get(name, default))
    except (TypeError, ValueError):
        value = minimum - 1
    if value < minimum:
        raise StripeFault(f"Invalid integer: {name}", name, "parameter_invalid_integer")
    return value


def _in_range(created: int, wanted: Any) -> bool:
    if not isinstance(wanted, dict):
        return wanted is None or created == int(wanted)
    ops = {"gt": created.__gt__, "gte": created.__ge__, "lt": created.__lt__, "lte": created.__le__}
    return all(ops[op](int(bound)) for op, bound in wanted.items() if op in ops)


def _handler_for(api: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8") if length else ""
            status, answer, headers = api._serve(self.command, self.path, self.headers, body)
            if status == 0:
                self.close_connection = True
                return
            payload = json.dumps(answer).encode()
            self.send_response(status)
            headers |= {"Content-Type": "application/json", "Content-Length": str(len(payload))}
            headers["Request-Id"] = f"req_fake{time.monotonic_ns()}"
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read ``FakeStripe.requests`` instead."""

    return Handler
