"""A small, stateful fake of the Stripe API (v1) that answers as Stripe documents it.

It models Stripe, not Refundry: the objects keep the shapes of the API reference
(https://docs.stripe.com/api) and a test may move them only the way a customer or the Dashboard
would (pay, pay with a delayed method, refund, dispute). The wire rules — authentication,
errors, idempotency keys, pagination, scripted outages — are in ``fake_stripe_http.py``, the
objects and routes in ``fake_stripe_objects.py``.

- Checkout: a session is created ``open`` and ``unpaid`` with its line items (a price and a
  quantity each) and no PaymentIntent; paying it creates the PaymentIntent and the Charge, then
  completes it. Its ``line_items`` are an expandable field: absent from every session the API
  returns unless ``expand[]=line_items`` (the first page), and listed in full, page by page, at
  ``GET /v1/checkout/sessions/{id}/line_items``. ``GET /v1/checkout/sessions?payment_intent=…``
  finds a PaymentIntent's session. By default a session names its account only by
  ``client_reference_id``; its metadata and the PaymentIntent's are empty.
- Events (https://docs.stripe.com/api/events/object): every change emits the events Stripe
  emits, each holding a snapshot of the object at that moment (later changes never reach an
  event already made) and never an expanded field; ``request`` names the API request that
  caused it, or nulls when automatic. :meth:`FakeStripe.events` lists them, oldest first.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterable

from tests.support.fake_stripe_http import Fault, Json, Seen, StripeFault
from tests.support.fake_stripe_objects import API_VERSION, StripeObjects

__all__ = ["API_VERSION", "FakeStripe", "Fault", "Json", "Seen", "StripeFault"]


class FakeStripe(StripeObjects):
    """Start with :meth:`start`, stop with :meth:`close`; ``url`` is the API base."""

    def start(self) -> FakeStripe:
        super().start()
        return self

    # -- what customers, the Dashboard and tests do ---------------------------------------------

    def add_price(self, price_id: str, unit_amount: int, currency: str = "usd") -> Json:
        """A one-time price in the account's catalog (``GET /v1/prices/{id}``)."""
        with self._lock:
            price = self._objects.get(price_id) or self._store(price_id, "price", None)
            price.update(active=True, currency=currency, unit_amount=unit_amount, type="one_time")
            price.update(unit_amount_decimal=str(unit_amount), metadata={}, nickname=None)
            price.update(product=f"prod_{price_id}", recurring=None, billing_scheme="per_unit")
            return copy.deepcopy(price)

    def checkout(
        self,
        items: Iterable[tuple[str, int]],
        *,
        client_reference_id: str | None = None,
        customer: str | None = None,
        metadata: Json | None = None,
        intent_metadata: Json | None = None,
        created: int | None = None,
        delayed: bool = False,
    ) -> Json:
        """A Checkout Session for ``items`` (price id, quantity), paid by the customer at
        ``created``: by card (complete and ``paid``), or with a delayed method (complete,
        ``unpaid``, its PaymentIntent ``processing`` until :meth:`settle_delayed`)."""
        with self._lock:
            params: Json = {
                "mode": "payment",
                "line_items": [{"price": p, "quantity": str(q)} for p, q in items],
                "client_reference_id": client_reference_id,
                "customer": customer,
                "metadata": dict(metadata or {}),
                "payment_intent_data": {"metadata": dict(intent_metadata or {})},
            }
            session = self._create_session(params, created)
            intent = self._intent(session["amount_total"], session["currency"], customer, created)
            intent["metadata"] = dict(intent_metadata or {})
            session.update(status="complete", url=None, payment_intent=intent["id"])
            if delayed:
                intent["status"] = "processing"
                self._emit("payment_intent.processing", intent, created)
            else:
                self._succeed(intent, created)
                session["payment_status"] = "paid"
            self._emit("checkout.session.completed", session, created)
            return copy.deepcopy(session)

    def settle_delayed(self, session_id: str, succeeded: bool, at: int | None = None) -> Json:
        """The delayed payment of a completed session succeeds or fails (at ``at``)."""
        with self._lock:
            session = self._objects[session_id]
            intent = self._objects[session["payment_intent"]]
            if succeeded:
                self._succeed(intent, at)
                session["payment_status"] = "paid"
                self._emit("checkout.session.async_payment_succeeded", session, at)
            else:
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {"type": "card_error", "code": "payment_failed"}
                self._emit("payment_intent.payment_failed", intent, at)
                self._emit("checkout.session.async_payment_failed", session, at)
            return copy.deepcopy(session)

    def create_paid_checkout(
        self,
        account_id: str,
        price_id: str,
        amount: int,
        currency: str = "usd",
        customer: str | None = None,
        created: int | None = None,
    ) -> tuple[Json, Json, Json]:
        """One pack bought by card: ``price_id`` (added at ``amount`` if new), quantity one,
        the account named only by ``client_reference_id``. Returns copies of (session,
        payment_intent, charge) as they are after payment."""
        with self._lock:
            if price_id not in self._objects:
                self.add_price(price_id, amount, currency)
            session = self.checkout(
                [(price_id, 1)], client_reference_id=account_id, customer=customer, created=created
            )
            intent = self._objects[session["payment_intent"]]
            charge = self._objects[intent["latest_charge"]]
            return session, copy.deepcopy(intent), copy.deepcopy(charge)

    def pay_without_checkout(
        self,
        amount: int,
        metadata: Json | None = None,
        *,
        customer: str | None = None,
        created: int | None = None,
    ) -> Json:
        """A PaymentIntent created and confirmed directly (at ``created``), as an invoice's
        payment or another product's would be: no Checkout Session made it. Returns a copy of
        it, succeeded."""
        with self._lock:
            params: Json = {"amount": str(amount), "confirm": "true", "metadata": metadata or {}}
            if customer is not None:
                params["customer"] = customer
            return copy.deepcopy(self._create_intent(params, created))

    def refund(self, payment_intent: str, amount: int | None = None) -> Json:
        """A refund made in the Dashboard (no idempotency key of ours)."""
        with self._lock:
            params: Json = {"payment_intent": payment_intent}
            if amount is not None:
                params["amount"] = str(amount)
            return copy.deepcopy(self._create_refund(params))

    def dispute(
        self,
        charge_id: str,
        status: str = "needs_response",
        amount: int | None = None,
        at: int | None = None,
    ) -> Json:
        """The cardholder disputes ``amount`` (default: all) of a charge: the funds are
        withdrawn at once; with ``status`` ``won`` or ``lost`` it is closed right away."""
        with self._lock:
            charge = self._objects[charge_id]
            dispute = self._store("dp", "dispute", at, charge=charge_id, status="needs_response")
            dispute.update(amount=amount or charge["amount"], currency=charge["currency"])
            dispute.update(payment_intent=charge["payment_intent"], reason="fraudulent")
            dispute.update(is_charge_refundable=False, metadata={})
            charge["disputed"] = True
            self._emit("charge.dispute.created", dispute, at)
            self._emit("charge.dispute.funds_withdrawn", dispute, at)
            if status in ("won", "lost"):
                self.close_dispute(dispute["id"], status, at)
            return copy.deepcopy(self._objects[dispute["id"]])

    def close_dispute(self, dispute_id: str, status: str, at: int | None = None) -> Json:
        """The bank decides: ``won`` reinstates the funds, ``lost`` keeps them withdrawn."""
        with self._lock:
            dispute = self._objects[dispute_id]
            dispute["status"] = status
            if status == "won":
                self._emit("charge.dispute.funds_reinstated", dispute, at)
            self._emit("charge.dispute.closed", dispute, at)
            return copy.deepcopy(dispute)

    def early_fraud_warning(self, charge_id: str) -> Json:
        """Radar's early fraud warning on a charge (``radar.early_fraud_warning.created``)."""
        with self._lock:
            charge = self._objects[charge_id]
            warning = self._store("issfr", "radar.early_fraud_warning", None, actionable=True)
            warning.update(charge=charge_id, payment_intent=charge["payment_intent"])
            warning["fraud_type"] = "made_with_stolen_card"
            self._emit("radar.early_fraud_warning.created", warning)
            return copy.deepcopy(warning)

    # -- what tests read ------------------------------------------------------------------------

    def get(self, object_id: str) -> Json:
        """A copy of one stored object, as it is now."""
        with self._lock:
            return copy.deepcopy(self._objects[object_id])

    def objects(self, kind: str) -> list[Json]:
        """Copies of the stored objects of one ``object`` type (``"refund"``…), oldest first."""
        with self._lock:
            return [copy.deepcopy(o) for o in self._objects.values() if o["object"] == kind]

    def events(self, kind: str = "*", about: str | None = None) -> list[Json]:
        """The events emitted so far, oldest first, as Stripe would deliver them: ``kind``
        matches their type (``*`` wildcards), ``about`` the id of their object."""
        return [
            e
            for e in self.objects("event")
            if fnmatch.fnmatchcase(e["type"], kind)
            and (about is None or e["data"]["object"]["id"] == about)
        ]

    @property
    def refund_calls(self) -> list[Seen]:
        """Every ``POST /v1/refunds`` that reached the server, faulted or replayed ones too."""
        return [s for s in self.requests if s.method == "POST" and s.path == "/v1/refunds"]
