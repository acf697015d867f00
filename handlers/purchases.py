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
pack never lands without its credits known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from handlers.packs import Pack, PackCatalog
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

__all__ = ["CheckoutSource", "observe", "read_purchase", "read_session"]


class CheckoutSource(Protocol):
    """What reading a purchase needs of the payment provider's API (``providers.stripe_api``)."""

    def checkout_line_items(self, session_id: str) -> list[dict[str, Any]]: ...

    def checkout_session_of(self, payment_intent: str) -> dict[str, Any] | None: ...

    def retrieve_payment_intent(self, payment_intent: str) -> dict[str, Any]: ...


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
    catalog and the provider's errors (``PaymentProviderUnavailable`` is transient).
    """
    if isinstance(event, CheckoutSession):
        if event.mode != "payment":
            return None
        return _merge(ledger, event, None, catalog, source, inbox_id)
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
    return _merge(ledger, session, event, catalog, source, inbox_id)


def read_purchase(
    ledger: Ledger, payment_intent: str, catalog: PackCatalog, source: CheckoutSource
) -> Payment | None:
    """Read a purchase from the provider's API by its PaymentIntent (``GET
    /v1/payment_intents/{id}``) and merge it into the ledger, as its
    ``payment_intent.succeeded`` event would; ``None`` when the PaymentIntent has not
    succeeded or bought no pack. Raises what :func:`observe` raises."""
    intent = source.retrieve_payment_intent(payment_intent)
    if intent.get("status") != "succeeded":
        return None
    event = from_api_object(EventKind.PAYMENT_SUCCEEDED, intent)
    assert isinstance(event, PaymentSucceeded)
    return observe(ledger, event, catalog, source)


def _merge(
    ledger: Ledger,
    session: CheckoutSession | None,
    intent: PaymentSucceeded | None,
    catalog: PackCatalog,
    source: CheckoutSource,
    inbox_id: str | None,
) -> Payment:
    """One write of what the session and/or the PaymentIntent say, with the pack and the
    account completed from the API when neither says it and the ledger does not know it."""
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
    pack = None
    if state != "failed" and (known is None or known.credits is None):
        pack = _pack(session, intent, known, catalog, source)
    account = _account(session, intent, known, source) if state != "failed" else None
    return ledger.payments.observe(
        purchase_key=key,
        provider="stripe",
        state=state,
        account_id=account,
        price_id=pack.price_id if pack else None,
        credits=pack.credits if pack else None,
        amount=intent.amount_received if intent else session.amount_total if session else None,
        currency=said.currency,
        customer=said.customer,
        charge_id=intent.latest_charge if intent else session.latest_charge if session else None,
        session_id=session.session_id if session else None,
        paid_at_ms=said.created * 1000 if state == "paid" else None,
        inbox_id=inbox_id,
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
