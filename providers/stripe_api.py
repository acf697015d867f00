"""Stripe's API over HTTP, through the official ``stripe.StripeClient``: refunds, the object
each payment event names (retrieved before the event may move money), the Checkout Sessions
and line items a pack is read from, and the objects the reconciliation sweeper reads.

Pure I/O, no parsing of webhooks (that is ``providers/stripe.py``). Configuration: the API key
(``STRIPE_API_KEY``, a secret) and the base URL (``STRIPE_API_BASE``, default
``https://api.stripe.com``, without ``/v1``), connect/read timeouts, bounded network retries.

**Idempotency.** stripe-python adds a *random* ``Idempotency-Key`` to every POST and reuses it
only for its own retries of that one call; a rerun of the job would draw a new key and refund
twice. :meth:`StripeAPI.refund_payment` therefore always sends the caller's deterministic key,
which survives reruns (Stripe keeps keys for at least 24 hours) and is also stored in the
refund's metadata so that a later reconciliation can find the refund by it.

**Retries.** The library retries connection errors, timeouts, 409 and 5xx itself, at most
``max_network_retries`` times with the same key (it does not retry 429 and ignores
``Retry-After``); when they are spent the error below is raised and the job retries later.
Errors, under ``RefundryError`` (defined in ``ledger.errors``, the one exception tree)::

    RefundryError
    ├── PaymentProviderUnavailable   transient: network, timeout, 409, 429, 5xx
    ├── PaymentRejected              permanent: any other 4xx (invalid, unauthorised, too large…)
    │   └── NoSuchObject             404 ``resource_missing``: Stripe has no object with that id
    └── IdempotencyKeyReused         permanent: Stripe saw this key with other parameters

The API key is given to the library only; it is never logged nor put in an error.

**Ids.** Every object id is checked against Stripe's documented shape
(``providers.job_ids.check_stripe_id``) before any URL or request is built: ``.``, ``..``
or any other id raises ``InvalidJobId`` (permanent: the event is dead-lettered with the
reason) and nothing is requested with our key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar
from urllib.parse import urlsplit

import stripe

from ledger.errors import (
    ConfigurationError,
    IdempotencyKeyReused,
    NoSuchObject,
    PaymentProviderUnavailable,
    PaymentRejected,
    RefundryError,
)
from providers.job_ids import check_stripe_id
from providers.stripe_fields import ObjectKind

if TYPE_CHECKING:
    from stripe.params import RefundCreateParams

__all__ = [
    "DEFAULT_API_BASE",
    "STRIPE_REASONS",
    "IdempotencyKeyReused",
    "NoSuchObject",
    "PaymentProviderUnavailable",
    "PaymentRejected",
    "StripeAPI",
]

T = TypeVar("T")
StripeReason = Literal["duplicate", "fraudulent", "requested_by_customer"]

DEFAULT_API_BASE: Final = "https://api.stripe.com"
MAX_KEY_LENGTH: Final = 255
MAX_EVENT_TYPES: Final = 20
TRANSIENT_STATUSES: Final = frozenset({409, 429})

STRIPE_REASONS: Final[dict[str, StripeReason]] = {
    "duplicate": "duplicate",
    "duplicate_charge": "duplicate",
    "fraudulent": "fraudulent",
    "early_fraud_warning": "fraudulent",
    "requested_by_customer": "requested_by_customer",
    "customer_request": "requested_by_customer",
}
"""Our refund reason → the only values Stripe accepts. Any other reason is sent without a Stripe
``reason`` (Stripe's is optional) rather than mislabelled; ours is always in the metadata.
Note that Stripe adds the card and email of a ``fraudulent`` refund to the Radar block lists."""


class StripeAPI:
    """A thin, typed wrapper over ``stripe.StripeClient``; every object is returned as a dict.

    The HTTP sessions are per thread (stripe's ``RequestsClient``): :meth:`close` closes the
    calling thread's one.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base: str = DEFAULT_API_BASE,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        max_network_retries: int = 2,
        page_size: int = 100,
    ) -> None:
        if not api_key:
            raise ConfigurationError("no Stripe API key", variable="STRIPE_API_KEY")
        self.base = _base_url(base)
        if max_network_retries < 0 or not 1 <= page_size <= 100:
            raise ConfigurationError(
                "bad Stripe client limits", retries=max_network_retries, page_size=page_size
            )
        self.page_size = page_size
        self._http = stripe.RequestsClient(timeout=(connect_timeout_s, read_timeout_s))
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": self.base},
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    def __repr__(self) -> str:
        return f"StripeAPI({self.base!r})"

    def __enter__(self) -> StripeAPI:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the calling thread's HTTP session."""
        self._http.close()  # type: ignore[no-untyped-call]

    def refund_payment(
        self, payment_intent: str, *, amount: int | None, reason: str, idempotency_key: str
    ) -> dict[str, Any]:
        """Refund ``amount`` (smallest currency unit; ``None`` = all that is left) of a payment.

        Calling it again with the same ``idempotency_key`` and arguments returns the first
        refund instead of making another; with other arguments it raises
        :class:`IdempotencyKeyReused`.
        """
        check_stripe_id(payment_intent, field="payment_intent")
        if not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
            raise ValueError(f"idempotency_key must be 1 to {MAX_KEY_LENGTH} characters")
        if amount is not None and (isinstance(amount, bool) or amount <= 0):
            raise ValueError("amount must be a positive integer or None")
        params: RefundCreateParams = {
            "payment_intent": payment_intent,
            "metadata": {"refundry_reason": reason[:500], "refundry_key": idempotency_key},
        }
        if amount is not None:
            params["amount"] = amount
        if reason in STRIPE_REASONS:
            params["reason"] = STRIPE_REASONS[reason]
        refund = self._call(
            lambda: self._client.v1.refunds.create(params, {"idempotency_key": idempotency_key}),
            operation="refund",
            payment_intent=payment_intent,
            idempotency_key=idempotency_key,
        )
        return refund.to_dict()

    def retrieve(self, kind: ObjectKind, object_id: str) -> dict[str, Any]:
        """The object of type ``kind`` whose id is ``object_id``, as Stripe holds it now, read
        with our key (``GET /v1/<collection>/<id>``). A Checkout Session comes with its
        ``line_items`` (first page) and its ``payment_intent`` expanded (Stripe's fulfillment
        advice, https://docs.stripe.com/checkout/fulfillment), an invoice with its
        ``payments`` (first page): what Refundry reads of them, in one call.

        References: https://docs.stripe.com/api/checkout/sessions/retrieve,
        https://docs.stripe.com/api/payment_intents/retrieve,
        https://docs.stripe.com/api/charges/retrieve,
        https://docs.stripe.com/api/disputes/retrieve,
        https://docs.stripe.com/api/radar/early_fraud_warnings/retrieve,
        https://docs.stripe.com/api/refunds/retrieve,
        https://docs.stripe.com/api/subscriptions/retrieve,
        https://docs.stripe.com/api/invoices/retrieve. Raises :class:`NoSuchObject` when Stripe
        has no such object, :class:`PaymentProviderUnavailable` when it cannot say.
        """
        check_stripe_id(object_id)  # before any URL is built: ``..`` is another API path
        v1 = self._client.v1
        requests: dict[ObjectKind, Callable[[], Any]] = {
            "checkout.session": lambda: v1.checkout.sessions.retrieve(
                object_id, {"expand": ["line_items", "payment_intent"]}
            ),
            "payment_intent": lambda: v1.payment_intents.retrieve(object_id),
            "charge": lambda: v1.charges.retrieve(object_id),
            "dispute": lambda: v1.disputes.retrieve(object_id),
            "radar.early_fraud_warning": lambda: v1.radar.early_fraud_warnings.retrieve(object_id),
            "refund": lambda: v1.refunds.retrieve(object_id),
            "subscription": lambda: v1.subscriptions.retrieve(object_id),
            "invoice": lambda: v1.invoices.retrieve(object_id, {"expand": ["payments"]}),
        }
        found = self._call(requests[kind], operation="retrieve", object=kind, id=object_id)
        return found.to_dict()  # type: ignore[no-any-return]

    def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        """One Checkout Session, expanded as :meth:`retrieve` expands it."""
        return self.retrieve("checkout.session", session_id)

    def checkout_line_items(self, session_id: str) -> list[dict[str, Any]]:
        """Every line item of a Checkout Session, all pages: what the customer bought.

        A webhook's session never carries ``line_items`` and an expanded one holds only its
        first page, so this lists ``GET /v1/checkout/sessions/{id}/line_items``
        (https://docs.stripe.com/api/checkout/sessions/line_items); each item is
        ``{"id": "li_…", "object": "item", "price": {"id": "price_…", …}, "quantity": n, …}``.
        """
        check_stripe_id(session_id)
        return list(
            self._pages(
                lambda: self._client.v1.checkout.sessions.line_items.list(
                    session_id, {"limit": self.page_size}
                ),
                operation="checkout_line_items",
                id=session_id,
            )
        )

    def checkout_session_of(self, payment_intent: str) -> dict[str, Any] | None:
        """The Checkout Session that made ``payment_intent``, or ``None`` when no session did
        (an invoice's payment, a PaymentIntent created directly). A ``payment_intent.*`` event
        names no session; Stripe's list filter finds it
        (``GET /v1/checkout/sessions?payment_intent=…``,
        https://docs.stripe.com/api/checkout/sessions/list), with its ``line_items`` expanded
        (first page), so that the pack is read in the same call."""
        check_stripe_id(payment_intent, field="payment_intent")
        page = self._call(
            lambda: self._client.v1.checkout.sessions.list(
                {"payment_intent": payment_intent, "limit": 1, "expand": ["data.line_items"]}
            ),
            operation="checkout_session_of",
            payment_intent=payment_intent,
        )
        return page.data[0].to_dict() if page.data else None

    def charge_refunds(self, charge_id: str) -> list[dict[str, Any]]:
        """Every refund of a charge, all pages (``GET /v1/refunds?charge=…``,
        https://docs.stripe.com/api/refunds/list): each with its ``id``, ``amount`` (minor
        unit) and ``status``. ``charge.refunded`` names none of them, only the running total."""
        check_stripe_id(charge_id, field="charge")
        return list(
            self._pages(
                lambda: self._client.v1.refunds.list(
                    {"charge": charge_id, "limit": self.page_size}
                ),
                operation="charge_refunds",
                id=charge_id,
            )
        )

    def charge_disputes(self, charge_id: str) -> list[dict[str, Any]]:
        """Every dispute of a charge, all pages (``GET /v1/disputes?charge=…``,
        https://docs.stripe.com/api/disputes/list): each with its ``id``, ``amount`` (minor
        unit) and ``status`` (``warning_*`` for an inquiry, ``needs_response``,
        ``under_review``, ``won``, ``lost``)."""
        check_stripe_id(charge_id, field="charge")
        return list(
            self._pages(
                lambda: self._client.v1.disputes.list(
                    {"charge": charge_id, "limit": self.page_size}
                ),
                operation="charge_disputes",
                id=charge_id,
            )
        )

    def retrieve_payment_intent(self, payment_intent: str) -> dict[str, Any]:
        return self.retrieve("payment_intent", payment_intent)

    def retrieve_charge(self, charge: str) -> dict[str, Any]:
        return self.retrieve("charge", charge)

    def invoice_payment_intents(self, invoice_id: str) -> list[str]:
        """The PaymentIntents of an invoice's paid invoice payments (usually one; none when it
        was paid out of band). Since API version 2025-03-31.basil neither an invoice nor its
        webhook events name them (``payments`` is only expandable)."""
        check_stripe_id(invoice_id, field="invoice")
        pages = self._pages(
            lambda: self._client.v1.invoice_payments.list(
                {"invoice": invoice_id, "status": "paid", "limit": self.page_size}
            ),
            operation="invoice_payment_intents",
        )
        found: list[str] = []
        for item in pages:
            payment = item.get("payment") or {}
            intent = payment.get("payment_intent")
            intent = intent.get("id") if isinstance(intent, dict) else intent
            if isinstance(intent, str) and intent and intent not in found:
                found.append(intent)
        return found

    def list_paid_sessions(self, created_gte: int) -> Iterator[dict[str, Any]]:
        """Complete Checkout Sessions created at or after ``created_gte`` whose order is to be
        fulfilled (``payment_status`` ``paid`` or ``no_payment_required``), newest first, with
        ``line_items`` expanded; every page is fetched as the iterator is consumed."""
        pages = self._pages(
            lambda: self._client.v1.checkout.sessions.list(
                {
                    "created": {"gte": created_gte},
                    "status": "complete",
                    "limit": self.page_size,
                    "expand": ["data.line_items"],
                }
            ),
            operation="list_paid_sessions",
        )
        fulfil = ("paid", "no_payment_required")
        return (session for session in pages if session.get("payment_status") in fulfil)

    def list_succeeded_payment_intents(self, created_gte: int) -> Iterator[dict[str, Any]]:
        """PaymentIntents created at or after ``created_gte`` whose status is ``succeeded``."""
        pages = self._pages(
            lambda: self._client.v1.payment_intents.list(
                {"created": {"gte": created_gte}, "limit": self.page_size}
            ),
            operation="list_succeeded_payment_intents",
        )
        return (intent for intent in pages if intent.get("status") == "succeeded")

    def list_events(self, types: Sequence[str], created_gte: int) -> Iterator[dict[str, Any]]:
        """Events of ``types`` (1 to 20 names) created at or after ``created_gte``; Stripe keeps
        only the last 30 days and may never have generated some, so reconcile from objects."""
        wanted = list(types)
        if not 1 <= len(wanted) <= MAX_EVENT_TYPES:
            raise ValueError(f"types must name 1 to {MAX_EVENT_TYPES} event types")
        return self._pages(
            lambda: self._client.v1.events.list(
                {"types": wanted, "created": {"gte": created_gte}, "limit": self.page_size}
            ),
            operation="list_events",
        )

    def _pages(
        self, first: Callable[[], stripe.ListObject[Any]], operation: str, **context: Any
    ) -> Iterator[dict[str, Any]]:
        """Every object of every page (``has_more`` / ``starting_after``), as dicts; errors
        mapped even between pages."""
        try:
            for item in first().auto_paging_iter():
                yield item.to_dict()
        except stripe.StripeError as exc:
            raise _translate(exc, operation, **context) from exc

    @staticmethod
    def _call(request: Callable[[], T], *, operation: str, **context: Any) -> T:
        try:
            return request()
        except stripe.StripeError as exc:
            raise _translate(exc, operation, **context) from exc


def _base_url(raw: str) -> str:
    base = (raw or "").strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError("not an http(s) URL", variable="STRIPE_API_BASE")
    if parts.path.endswith("/v1"):
        raise ConfigurationError("leave /v1 out of the base URL", variable="STRIPE_API_BASE")
    return base


def _translate(exc: stripe.StripeError, operation: str, **context: Any) -> RefundryError:
    """The Refundry error for a stripe-python error; Stripe's own message is not copied."""
    status = exc.http_status
    error = exc.error
    fields: dict[str, Any] = {
        "operation": operation,
        **context,
        "status": status,
        "type": getattr(error, "type", None),
        "code": exc.code or getattr(error, "code", None),
        "param": getattr(error, "param", None),
        "request_id": exc.request_id,
    }
    fields = {name: value for name, value in fields.items() if value is not None}
    if isinstance(exc, stripe.IdempotencyError):
        return IdempotencyKeyReused(**fields)
    if isinstance(exc, stripe.APIConnectionError):
        return PaymentProviderUnavailable("no answer from Stripe", **fields)
    if status == 404 and fields.get("code") == "resource_missing":
        return NoSuchObject(**fields)
    if status is not None and 400 <= status < 500 and status not in TRANSIENT_STATUSES:
        return PaymentRejected(**fields)
    return PaymentProviderUnavailable(**fields)
