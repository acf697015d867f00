"""The fake Stripe with subscriptions: a subscription, its cancellation, and invoices paid
through a PaymentIntent (or out of band, or of nothing), shaped as API version
``2026-06-24.dahlia`` renders them: an invoice names its subscription under
``parent.subscription_details`` and carries no ``payment_intent``;
``GET /v1/invoice_payments?invoice=…&status=paid`` finds it, and so does the invoice's
``payments`` expanded. Subscriptions and invoices are retrieved by id like every object.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.support.fake_stripe import FakeStripe, Json, StripeFault

__all__ = ["FakeBilling"]


class FakeBilling(FakeStripe):
    def create_subscription(self, customer: str, created: int) -> Json:
        with self._lock:
            sub = self._store("sub", "subscription", created, customer=customer, status="active")
            sub.update(cancel_at_period_end=False, cancel_at=None, canceled_at=None)
            sub.update(ended_at=None, metadata={})
            return copy.deepcopy(sub)

    def schedule_cancellation(self, subscription_id: str, at: int, period_end: int) -> Json:
        """``cancel_at_period_end``: requested at ``at``, still running until ``period_end``."""
        with self._lock:
            sub = self._objects[subscription_id]
            sub.update(cancel_at_period_end=True, canceled_at=at, cancel_at=period_end)
            self._emit("customer.subscription.updated", sub, at)
            return copy.deepcopy(sub)

    def cancel_subscription(self, subscription_id: str, at: int) -> Json:
        """Cancelled now (``at``): status ``canceled``, ended."""
        with self._lock:
            sub = self._objects[subscription_id]
            sub.update(status="canceled", canceled_at=at, ended_at=at, cancel_at_period_end=False)
            self._emit("customer.subscription.deleted", sub, at)
            return copy.deepcopy(sub)

    def pay_invoice(
        self, subscription_id: str, amount: int, paid_at: int, currency: str = "usd"
    ) -> tuple[Json, Json]:
        """An invoice of the subscription paid at ``paid_at`` through a new PaymentIntent.
        Returns copies of (invoice, payment_intent)."""
        with self._lock:
            customer = self._objects[subscription_id]["customer"]
            intent = self._intent(amount, currency, customer, paid_at)
            self._succeed(intent, paid_at)
            invoice = self._paid_invoice(subscription_id, amount, paid_at, currency)
            payment = self._store("inpay", "invoice_payment", paid_at, invoice=invoice["id"])
            payment.update(amount_paid=amount, amount_requested=amount, currency=currency)
            payment.update(status="paid", is_default=True)
            payment["payment"] = {"type": "payment_intent", "payment_intent": intent["id"]}
            self._emit("invoice.paid", invoice, paid_at)
            return copy.deepcopy(invoice), copy.deepcopy(intent)

    def settle_invoice(self, subscription_id: str, amount: int, paid_at: int) -> Json:
        """An invoice of the subscription paid with no PaymentIntent: marked paid out of band
        (``amount`` > 0: the money came outside Stripe), or with nothing to pay (``amount`` 0,
        paid automatically), https://docs.stripe.com/api/invoices/pay. Returns a copy."""
        with self._lock:
            invoice = self._paid_invoice(subscription_id, amount, paid_at, "usd")
            invoice["paid_out_of_band"] = amount > 0
            self._emit("invoice.paid", invoice, paid_at)
            return copy.deepcopy(invoice)

    def _paid_invoice(self, subscription_id: str, amount: int, paid_at: int, currency: str) -> Json:
        customer = self._objects[subscription_id]["customer"]
        invoice = self._store("in", "invoice", paid_at - 3600, customer=customer)
        invoice.update(amount_due=amount, amount_paid=amount, amount_remaining=0)
        invoice.update(currency=currency, status="paid", paid_out_of_band=False)
        invoice.update(billing_reason="subscription_cycle", metadata={})
        invoice["status_transitions"] = {"finalized_at": paid_at - 3600, "paid_at": paid_at}
        details = {"subscription": subscription_id, "metadata": {}}
        invoice["parent"] = {"type": "subscription_details", "subscription_details": details}
        return invoice

    def _route(
        self, method: str, path: str, params: Json, request_id: str, key: str | None
    ) -> Json:
        if path != "/v1/invoice_payments":
            return super()._route(method, path, params, request_id, key)
        if method != "GET":
            raise StripeFault(f"Unrecognized request URL ({method}: {path}).", None, None, 404)
        found: list[Any] = [
            copy.deepcopy(o)
            for o in self._objects.values()
            if o["object"] == "invoice_payment"
            and o["invoice"] == params.get("invoice", o["invoice"])
            and o["status"] == params.get("status", o["status"])
        ]
        return {"object": "list", "data": found, "has_more": False, "url": path}
