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

    def open_checkout(
        self,
        items: Iterable[tuple[str, int]],
        *,
        client_reference_id: str | None = None,
        customer: str | None = None,
        metadata: Json | None = None,
        created: int | None = None,
        percent_off: int = 0,
    ) -> Json:
        """A Checkout Session for ``items`` (price id, quantity) that a customer opened at
        ``created`` and has not paid (``open``, ``unpaid``, no PaymentIntent yet);
        ``percent_off``: a coupon taking that share of every line off."""
        with self._lock:
            params: Json = {
                "mode": "payment",
                "line_items": [{"price": p, "quantity": str(q)} for p, q in items],
                "client_reference_id": client_reference_id,
                "customer": customer,
                "metadata": dict(metadata or {}),
                "percent_off": percent_off,
            }
            return copy.deepcopy(self._create_session(params, created))

    def checkout(
        self,
        items: Iterable[tuple[str, int]],
        *,
        client_reference_id: str | None = None,
        customer: str | None = None,
        metadata: Json | None = None,
        intent_metadata: Json | None = None,
        created: int | None = None,
        paid_at: int | None = None,
        delayed: bool = False,
        percent_off: int = 0,
    ) -> Json:
        """A Checkout Session for ``items`` (price id, quantity), made at ``created`` and paid
        by the customer then or at ``paid_at`` (the PaymentIntent is made when the customer
        pays): by card (complete and ``paid``), or with a delayed method, ACH Direct
        Debit (complete, ``unpaid``, its PaymentIntent ``processing`` and its Charge
        ``pending`` until :meth:`settle_delayed`). With ``percent_off`` 100 nothing is to pay:
        the session completes ``no_payment_required`` with no PaymentIntent
        (https://docs.stripe.com/payments/checkout/no-cost-orders)."""
        with self._lock:
            opened = self.open_checkout(
                items,
                client_reference_id=client_reference_id,
                customer=customer,
                metadata=metadata,
                created=created,
                percent_off=percent_off,
            )
            session = self._objects[opened["id"]]
            created = session["created"] if paid_at is None else paid_at
            email = f"{client_reference_id or 'guest'}@example.com"
            session["customer_details"] = {"email": email, "name": None, "phone": None}
            session["customer_details"].update(address=None, tax_exempt="none", tax_ids=[])
            if session["amount_total"] == 0:
                session.update(status="complete", url=None, payment_status="no_payment_required")
                self._emit("checkout.session.completed", session, created)
                return copy.deepcopy(session)
            intent = self._intent(session["amount_total"], session["currency"], customer, created)
            intent["metadata"] = dict(intent_metadata or {})
            session.update(status="complete", url=None, payment_intent=intent["id"])
            if delayed:
                intent.update(status="processing", payment_method_types=["us_bank_account"])
                session["payment_method_types"] = ["card", "us_bank_account"]
                self._emit(
                    "charge.pending", self._charge(intent, created, "us_bank_account"), created
                )
                self._emit("payment_intent.processing", intent, created)
            else:
                self._succeed(intent, created)
                session["payment_status"] = "paid"
            self._emit("checkout.session.completed", session, created)
            return copy.deepcopy(session)

    def expire(self, session_id: str, at: int | None = None) -> Json:
        """An open session expires unpaid (24 hours after it was made, or expired early):
        ``checkout.session.expired`` (https://docs.stripe.com/api/checkout/sessions/expire)."""
        with self._lock:
            session = self._objects[session_id]
            if session["status"] != "open":
                raise ValueError("Stripe: only an open session can expire")
            session.update(status="expired", url=None)
            self._emit("checkout.session.expired", session, at)
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
                charge = self._objects[intent["latest_charge"]]
                charge.update(status="failed", failure_code="debit_not_authorized")
                self._emit("charge.failed", charge, at)
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

    def refund(
        self, payment_intent: str, amount: int | None = None, *, pending_reason: str | None = None
    ) -> Json:
        """A refund made in the Dashboard (no idempotency key of ours); with
        ``pending_reason`` (``insufficient_funds``, ``charge_pending``, ``processing``) it stays
        ``pending`` until :meth:`settle_refund`, though ``charge.refunded`` already counts it
        (https://docs.stripe.com/api/refunds/object, ``pending_reason``)."""
        with self._lock:
            params: Json = {"payment_intent": payment_intent}
            if amount is not None:
                params["amount"] = str(amount)
            self.refund_pending_reason, usual = pending_reason, self.refund_pending_reason
            try:
                return copy.deepcopy(self._create_refund(params))
            finally:
                self.refund_pending_reason = usual

    def settle_refund(
        self,
        refund_id: str,
        succeeded: bool,
        failure_reason: str = "expired_or_canceled_card",
        at: int | None = None,
    ) -> Json:
        """A refund ends (https://docs.stripe.com/refunds#failed-refunds): a pending one
        succeeds; or one pending or succeeded fails (``failure_reason``), its amount goes back
        to the merchant (``failure_balance_transaction``) and off the charge's
        ``amount_refunded``. Emits ``refund.updated`` and ``charge.refund.updated`` (with
        ``previous_attributes``), and ``refund.failed`` for a failure."""
        with self._lock:
            refund = self._objects[refund_id]
            before = {"status": refund["status"], "pending_reason": refund["pending_reason"]}
            if succeeded:
                refund.update(status="succeeded", pending_reason=None)
            else:
                charge = self._objects[refund["charge"]]
                charge["amount_refunded"] -= refund["amount"]
                charge["refunded"] = False
                refund.update(status="failed", pending_reason=None, failure_reason=failure_reason)
                refund["failure_balance_transaction"] = f"txn_fake{next(self._ids):010d}"
                before["failure_reason"] = None
            self._emit("refund.updated", refund, at, before)
            if not succeeded:
                self._emit("refund.failed", refund, at)
            self._emit("charge.refund.updated", refund, at, before)
            return copy.deepcopy(refund)

    def fail_refund(self, refund_id: str, failure_reason: str = "expired_or_canceled_card") -> Json:
        """The refund fails after it was made (the card it went back to is closed, say): its
        ``status`` becomes ``failed`` with a ``failure_reason``, the money comes back to the
        merchant (its ``failure_balance_transaction`` reverses the refund's, so the charge
        counts it refunded no more), and ``refund.failed`` is sent
        (https://docs.stripe.com/api/refunds/object, https://docs.stripe.com/api/refunds)."""
        with self._lock:
            refund = self._objects[refund_id]
            refund.update(status="failed", failure_reason=failure_reason)
            charge = self._objects[refund["charge"]]
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
            self._emit("refund.failed", refund)
            return copy.deepcopy(refund)

    def dispute(
        self,
        charge_id: str,
        status: str = "needs_response",
        amount: int | None = None,
        at: int | None = None,
    ) -> Json:
        """The cardholder disputes ``amount`` (default: all) of a charge
        (https://docs.stripe.com/disputes/how-disputes-work): a chargeback withdraws the funds
        at once and the charge can no longer be refunded (``is_charge_refundable`` false);
        an inquiry (``status`` ``warning_needs_response``) withdraws nothing. With ``status``
        ``won`` or ``lost`` it is closed right away. A fully refunded charge cannot be
        disputed ("Disputes and chargebacks aren't possible on credit card charges that are
        fully refunded", https://docs.stripe.com/refunds): ``ValueError``."""
        with self._lock:
            charge = self._objects[charge_id]
            if charge["refunded"]:
                raise ValueError("Stripe: a fully refunded charge cannot be disputed")
            inquiry = status.startswith("warning_")
            opened = "warning_needs_response" if inquiry else "needs_response"
            dispute = self._store("dp", "dispute", at, charge=charge_id, status=opened)
            dispute.update(amount=amount or charge["amount"], currency=charge["currency"])
            dispute.update(payment_intent=charge["payment_intent"], reason="fraudulent")
            dispute.update(is_charge_refundable=inquiry, metadata={})
            due = dispute["created"] + 7 * 86_400
            dispute["evidence_details"] = {"due_by": due, "has_evidence": False}
            dispute["evidence_details"].update(past_due=False, submission_count=0)
            withdrawn = {"id": f"txn_fake{next(self._ids):010d}", "object": "balance_transaction"}
            withdrawn.update(amount=-dispute["amount"], currency=dispute["currency"])
            withdrawn.update(type="adjustment", reporting_category="dispute")
            dispute["balance_transactions"] = [] if inquiry else [withdrawn]
            charge["disputed"] = True
            self._emit("charge.dispute.created", dispute, at)
            if not inquiry:
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

    def delivered(self, *event_ids: str) -> None:
        """The endpoint acknowledged these events: ``pending_webhooks`` 0, so
        ``GET /v1/events?delivery_success=false`` no longer lists them."""
        with self._lock:
            for event_id in event_ids:
                self._objects[event_id]["pending_webhooks"] = 0

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
