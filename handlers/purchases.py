"""What a Checkout purchase is: its account and its pack, as Stripe's API knows them.

Stripe's fulfillment guidance (https://docs.stripe.com/checkout/fulfillment) is to fulfil from
the Checkout Session's line items as the API returns them. An event reaches this module only
as the API confirmed it (``handlers.confirmation``): a session retrieved with its
``line_items`` and its PaymentIntent expanded, or a PaymentIntent retrieved and succeeded,
whose session is then found by its id (``GET /v1/checkout/sessions?payment_intent=…``, line
items expanded). The pack is each line item's credits times its quantity, summed; a price
outside the catalog is refused (``PackUnknown``), never guessed; when a session has more line
items than one page holds, the rest are listed. A price id the platform put in the metadata
of the object at Stripe (``metadata.price_id``) is an optional shortcut that saves that
lookup, never the confirmation: the object it is read from was retrieved, and paid.

The account is the session's ``client_reference_id``, else its ``metadata.account_id``, else
the PaymentIntent's ``metadata.account_id`` (read from the expanded PaymentIntent, or fetched).

Everything is fetched before anything is written: a provider outage during a fetch raises
``PaymentProviderUnavailable`` (transient: the event is retried) and records nothing, so a
pack never lands without its credits known. A pack that cannot be known (``PackUnknown``) is
no outage: the purchase is recorded without it, with its refusal as a decision (``refused``,
once per reason), so that it stays traceable and reconciliation settles it by policy.

:func:`preview` reads the same facts and answers what :func:`observe` would record, writing
nothing (``refundry reconcile --dry-run``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from handlers.packs import Pack, PackCatalog, PackUnknown
from ledger import Ledger
from ledger.payments import Payment
from providers.stripe import (
    CheckoutSession,
    EventKind,
    PaymentSucceeded,
    from_api_object,
    purchase_key,
)
from providers.stripe_fields import LineItem, read_line_items

__all__ = [
    "CheckoutSource",
    "Observed",
    "observe",
    "preview",
    "read_purchase",
    "read_session",
    "succeeded_intent",
]


class CheckoutSource(Protocol):
    """What reading a purchase needs of the payment provider's API (``providers.stripe_api``)."""

    def checkout_line_items(self, session_id: str) -> list[dict[str, Any]]: ...

    def checkout_session_of(self, payment_intent: str) -> dict[str, Any] | None: ...

    def retrieve_payment_intent(self, payment_intent: str) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Observed:
    """What an event, completed from the API, says of its purchase: the fields to merge
    (amounts in the currency's minor unit, ``paid_at_ms`` in ms since the epoch), and
    ``refused``, the reason its pack cannot be known (``None`` when it can)."""

    purchase_key: str
    state: str
    account_id: str | None
    pack: Pack | None
    refused: PackUnknown | None
    amount: int | None
    currency: str | None
    customer: str | None
    charge_id: str | None
    session_id: str | None
    paid_at_ms: int | None

    def over(self, known: Payment | None) -> Payment:
        """The purchase as the ledger would hold it once this is merged into ``known``:
        known fields kept, the state only moving forward (``upsert_payment``)."""
        merged = known or Payment(
            purchase_key=self.purchase_key,
            provider="stripe",
            state=self.state,
            account_id=None,
            price_id=None,
            credits=None,
            amount=None,
            currency=None,
            customer=None,
            charge_id=None,
            session_id=None,
            paid_at_ms=None,
            refunded_amount=0,
            clawed_credits=0,
            refund_reason=None,
            flag=None,
        )
        forward = {("unpaid", "paid"), ("failed", "paid"), ("unpaid", "failed")}
        return replace(
            merged,
            state=self.state if (merged.state, self.state) in forward else merged.state,
            account_id=merged.account_id or self.account_id,
            price_id=merged.price_id or (self.pack.price_id if self.pack else None),
            credits=merged.credits or (self.pack.credits if self.pack else None),
            amount=merged.amount if merged.amount is not None else self.amount,
            currency=merged.currency or self.currency,
            customer=merged.customer or self.customer,
            charge_id=merged.charge_id or self.charge_id,
            session_id=merged.session_id or self.session_id,
            paid_at_ms=merged.paid_at_ms or self.paid_at_ms,
        )


def read_session(obj: Mapping[str, Any]) -> CheckoutSession:
    """A Checkout Session as the API returned it, read by the webhook event's parser."""
    session = from_api_object(EventKind.CHECKOUT_COMPLETED, obj)
    assert isinstance(session, CheckoutSession)
    return session


def observe(
    ledger: Ledger,
    event: CheckoutSession | PaymentSucceeded,
    catalog: PackCatalog,
    source: CheckoutSource,
    *,
    inbox_id: str | None = None,
) -> Payment | None:
    """Merge what ``event`` says about its purchase, completed from the API, into the ledger;
    ``inbox_id`` (an event with nothing to grant) is processed in the same transaction.

    Returns ``None``, recording nothing, when the event is not about a pack: a Checkout
    Session not in ``payment`` mode, or a PaymentIntent that no Checkout Session made and whose
    metadata names no price. Raises ``PackUnknown`` (permanent) for a price outside the
    catalog, once the purchase is recorded without its pack and the refusal is recorded as
    its decision (``inbox_id`` left pending: the event's dead letter says why), and the
    provider's errors (``PaymentProviderUnavailable`` is transient), recording nothing.
    """
    seen = preview(ledger, event, catalog, source)
    if seen is None:
        return None
    payment = ledger.payments.observe(
        purchase_key=seen.purchase_key,
        provider="stripe",
        state=seen.state,
        account_id=seen.account_id,
        price_id=seen.pack.price_id if seen.pack else None,
        credits=seen.pack.credits if seen.pack else None,
        amount=seen.amount,
        currency=seen.currency,
        customer=seen.customer,
        charge_id=seen.charge_id,
        session_id=seen.session_id,
        paid_at_ms=seen.paid_at_ms,
        inbox_id=None if seen.refused else inbox_id,
    )
    if seen.refused is not None:
        ledger.payments.note(seen.purchase_key, "refused", seen.refused.reason, once=True)
        raise seen.refused
    return payment


def preview(
    ledger: Ledger,
    event: CheckoutSession | PaymentSucceeded,
    catalog: PackCatalog,
    source: CheckoutSource,
) -> Observed | None:
    """What :func:`observe` would merge for ``event``, read from the ledger and the API alone:
    nothing is written. ``None`` when the event is not about a pack. Raises the provider's
    errors."""
    if isinstance(event, CheckoutSession):
        if event.mode != "payment":
            return None
        return _read(ledger, event, None, catalog, source)
    known = ledger.payments.get(event.payment_intent)
    session: CheckoutSession | None = None
    named = event.metadata_price_id is not None and event.account_id is not None
    if not named and (known is None or known.account_id is None or known.credits is None):
        found = source.checkout_session_of(event.payment_intent)
        session = read_session(found) if found is not None else None
    no_session = session is None and (known is None or known.session_id is None)
    no_price = event.metadata_price_id is None and (known is None or known.credits is None)
    if no_session and no_price:
        return None  # no Checkout Session made it and nothing names a price: not a pack
    return _read(ledger, session, event, catalog, source)


def read_purchase(
    ledger: Ledger, payment_intent: str, catalog: PackCatalog, source: CheckoutSource
) -> Payment | None:
    """Read a purchase from the provider's API by its PaymentIntent (``GET
    /v1/payment_intents/{id}``) and merge it into the ledger, as its
    ``payment_intent.succeeded`` event would; ``None`` when the PaymentIntent has not
    succeeded or bought no pack. Raises what :func:`observe` raises."""
    event = succeeded_intent(source, payment_intent)
    return None if event is None else observe(ledger, event, catalog, source)


def succeeded_intent(source: CheckoutSource, payment_intent: str) -> PaymentSucceeded | None:
    """The PaymentIntent as the API returns it now (``GET /v1/payment_intents/{id}``), read as
    its ``payment_intent.succeeded`` event; ``None`` when it has not succeeded."""
    intent = source.retrieve_payment_intent(payment_intent)
    if intent.get("status") != "succeeded":
        return None
    event = from_api_object(EventKind.PAYMENT_SUCCEEDED, intent)
    assert isinstance(event, PaymentSucceeded)
    return event


def _read(
    ledger: Ledger,
    session: CheckoutSession | None,
    intent: PaymentSucceeded | None,
    catalog: PackCatalog,
    source: CheckoutSource,
) -> Observed:
    """What the session and/or the PaymentIntent say, with the pack and the account completed
    from the API when neither says it and the ledger does not know it."""
    said = intent if intent is not None else session
    assert said is not None
    key = purchase_key(said)
    assert key is not None  # both kinds always name their purchase
    known = ledger.payments.get(key)
    if intent is not None:
        state = "paid"  # the PaymentIntent succeeded: the money is in, whatever the session says
    else:
        assert session is not None
        failed = session.kind is EventKind.CHECKOUT_ASYNC_FAILED
        state = "paid" if session.paid else ("failed" if failed else "unpaid")
    pack, refused = None, None
    if state != "failed" and (known is None or known.credits is None):
        try:
            pack = _pack(session, intent, known, catalog, source)
        except PackUnknown as exc:  # recorded without its pack, never guessed
            refused = exc
    account = _account(session, intent, known, source) if state != "failed" else None
    return Observed(
        purchase_key=key,
        state=state,
        account_id=account,
        pack=pack,
        refused=refused,
        amount=intent.amount_received if intent else session.amount_total if session else None,
        currency=said.currency,
        customer=said.customer,
        charge_id=intent.latest_charge if intent else session.latest_charge if session else None,
        session_id=session.session_id if session else None,
        paid_at_ms=said.created * 1000 if state == "paid" else None,
    )


def _pack(
    session: CheckoutSession | None,
    intent: PaymentSucceeded | None,
    known: Payment | None,
    catalog: PackCatalog,
    source: CheckoutSource,
) -> Pack | None:
    """The pack from the line items the event carries, else the metadata shortcut, else the
    line items fetched from the API; ``None`` when no session is known to fetch them from."""
    if session is not None and session.line_items is not None:
        return catalog.pack_for(session.line_items)
    shortcut = (session.metadata_price_id if session else None) or (
        intent.metadata_price_id if intent else None
    )
    if shortcut is not None:
        return catalog.pack_for([LineItem(shortcut, 1)])
    session_id = session.session_id if session else known.session_id if known else None
    if session_id is None:
        return None
    items = read_line_items(source.checkout_line_items(session_id), "line_items.data.")
    return catalog.pack_for(items)


def _account(
    session: CheckoutSession | None,
    intent: PaymentSucceeded | None,
    known: Payment | None,
    source: CheckoutSource,
) -> str | None:
    """``client_reference_id``, else the session's ``metadata.account_id``, else the
    PaymentIntent's (expanded in a retrieved session, else fetched)."""
    if session is not None:
        named = session.client_reference_id or session.account_id or session.intent_account_id
        if named:
            return named
    if intent is not None:
        return intent.account_id
    if known is not None and known.account_id is not None:
        return None  # already known: the ledger keeps it
    if session is None or session.payment_intent is None:
        return None
    metadata = source.retrieve_payment_intent(session.payment_intent).get("metadata") or {}
    account = metadata.get("account_id") if isinstance(metadata, Mapping) else None
    return account if isinstance(account, str) and account else None
