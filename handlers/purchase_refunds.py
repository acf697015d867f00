"""Our own refund of a purchase (a duplicate charge, an unlanded pack, a fraud warning): made
once, and never silently dropped.

The refund is begun in the ledger (``refunding``, a compare-and-set on the state it was
decided from) before the provider is called, and confirmed after; until then every event of
the purchase and every reconciliation carries it on. The provider call is keyed by a
deterministic idempotency key (``ledger.keys.provider_refund``): a rerun after a lost answer
gets the same refund back. A call that Stripe answered with a 5xx may be kept under its key
and replayed to every retry with it ("Retries with the same key return the saved response,
including 500 errors", https://docs.stripe.com/api/idempotent_requests), so such a failure
moves the refund to its next attempt, whose key is numbered and recorded in the ledger; and
before any call under a later key the payment's refunds are listed at Stripe
(``GET /v1/refunds?charge=…``, https://docs.stripe.com/api/refunds/list) and ours, found by
the key kept in its metadata, is confirmed instead of asking again. A timeout or a 409/429
keeps the same key (the first call may still be running). Every refund of ours is of all
that is left of the charge, so two keys can never both take money: Stripe refuses the second
(``charge_already_refunded``), which is read as "look for ours"; when none of the refunds
is ours, the money went back outside Refundry and the purchase is refunded without one.

A refund that keeps failing raises one alert (``STUCK_AFTER_ATTEMPTS``) and stays
``refunding``, retried by the event's retries, the inbox sweep and every reconciliation. A
refund Stripe refuses because the charge is under chargeback is given up, with one alert.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, Literal, Protocol

from handlers.alerts import alert
from ledger import Ledger
from ledger.payments import Payment, Reversal, refund_key
from providers.stripe_api import PaymentProviderUnavailable, PaymentRejected

__all__ = [
    "STUCK_AFTER_ATTEMPTS",
    "RefundGateway",
    "charge_of",
    "refund_later_duplicates",
    "refund_purchase",
]

log = logging.getLogger(__name__)

STUCK_AFTER_ATTEMPTS: Final = 3
"""Failed attempts after which a refund still not made raises an alert (once)."""

_NOT_MADE: Final = frozenset({"failed", "canceled"})
"""Refund statuses under which no money went back (https://docs.stripe.com/api/refunds/object)."""


class RefundGateway(Protocol):
    """What refunding a purchase needs of the payment provider's API
    (``providers.stripe_api``)."""

    def refund_payment(
        self, payment_intent: str, *, amount: int | None, reason: str, idempotency_key: str
    ) -> Mapping[str, Any]: ...

    def charge_refunds(self, charge_id: str) -> list[dict[str, Any]]: ...

    def retrieve_payment_intent(self, payment_intent: str) -> dict[str, Any]: ...


def refund_purchase(
    ledger: Ledger,
    p: Payment,
    *,
    reason: str,
    gateway: RefundGateway,
    expected_state: str,
    inbox_id: str | None = None,
) -> bool:
    """Give a purchase's money back, once, and claw back any credits it landed, if it is still
    in ``expected_state`` (the state the refund was decided from; ``refunding`` carries a
    refund begun earlier on); False when it has moved on. ``inbox_id`` is marked processed with
    the refund's confirmation.

    Raises ``PaymentProviderUnavailable`` (transient: the purchase stays ``refunding`` and is
    retried) and ``PaymentRejected`` (Stripe refused, and no refund of ours exists).
    """
    current = ledger.payments.begin_refund(
        p.purchase_key, reason=reason, expected_state=expected_state, inbox_id=inbox_id
    )
    if current is None:
        return False
    # The key and the reason come from the compare-and-set that began (or found) the refund,
    # never from a later read: the purchase may have moved on meanwhile (the refund given up
    # under chargeback, its key moved on, and another decision begun with another reason),
    # and that key is to go out only with the reason it was begun with.
    if current.refund_attempt > 0:  # an earlier key failed: look before asking again
        found = _ours(current, _listed_refunds(gateway, current))
        if found is not None:
            _confirm(ledger, current, found, inbox_id)
            return True
    try:
        refund = gateway.refund_payment(
            current.purchase_key,
            amount=None,
            reason=current.refund_reason or reason,  # the reason this key was begun with
            idempotency_key=current.refund_key,
        )
    except PaymentProviderUnavailable as exc:
        _refund_failed_alert(current, exc.__class__.__name__, exc.reason, level="warning")
        _failed(ledger, current, exc)
        raise
    except PaymentRejected as exc:
        listed = _listed_refunds(gateway, current)
        found = _ours(current, listed)
        if found is None and exc.fields.get("code") == "charge_disputed":
            _refund_failed_alert(current, "charge_disputed", exc.reason)
            _refused_under_chargeback(ledger, current, inbox_id)
            return False
        if found is None and exc.fields.get("code") == "charge_already_refunded":
            _refunded_by_others(ledger, current, listed, reason, inbox_id)
            return True
        if found is None:  # refused, and no refund of ours exists: not made
            _refund_failed_alert(current, str(exc.fields.get("code") or "rejected"), exc.reason)
            raise
        refund = found  # made by an earlier attempt (charge_already_refunded)
    _confirm(ledger, current, refund, inbox_id)
    return True


def refund_later_duplicates(
    ledger: Ledger, p: Payment, *, gateway: RefundGateway, inbox_id: str | None = None
) -> int:
    """Carry on the refunds of the purchases found to duplicate ``p`` after they landed
    (they were paid later: ``GrantResult.SUPERSEDES``); ``inbox_id`` is marked processed with
    their confirmation, or at once when there is none left. Returns how many there were.
    Raises like :func:`refund_purchase`."""
    later = ledger.payments.duplicates_refunding(p.purchase_key)
    for twin in later:
        refund_purchase(
            ledger,
            twin,
            reason="duplicate",
            gateway=gateway,
            expected_state="refunding",
            inbox_id=inbox_id,
        )
    if not later and inbox_id is not None:
        ledger.inbox.mark_processed(inbox_id)
    return len(later)


def _listed_refunds(gateway: RefundGateway, p: Payment) -> list[dict[str, Any]]:
    """Every refund of the purchase's charge as Stripe lists them (each with its ``id``,
    ``amount`` in the minor unit, ``status`` and ``metadata``)."""
    charge_id = charge_of(gateway, p)
    return [] if charge_id is None else gateway.charge_refunds(charge_id)


def charge_of(gateway: RefundGateway, p: Payment) -> str | None:
    """The purchase's charge id: the ledger's, else its PaymentIntent's ``latest_charge``;
    ``None`` for a purchase with no payment (no PaymentIntent) or no charge yet."""
    if p.charge_id is not None:
        return p.charge_id
    if p.purchase_key == p.session_id:
        return None
    latest = gateway.retrieve_payment_intent(p.purchase_key).get("latest_charge")
    charge_id = latest.get("id") if isinstance(latest, Mapping) else latest
    return charge_id if isinstance(charge_id, str) else None


def _ours(p: Payment, refunds: list[dict[str, Any]]) -> Mapping[str, Any] | None:
    """The refund one of our attempts made (its metadata keeps the key), if money went back."""
    keys = {refund_key(p.purchase_key, n) for n in range(p.refund_attempt + 1)}
    for refund in refunds:
        metadata = refund.get("metadata") or {}
        if metadata.get("refundry_key") in keys and refund.get("status") not in _NOT_MADE:
            return refund
    return None


def _confirm(ledger: Ledger, p: Payment, refund: Mapping[str, Any], inbox_id: str | None) -> None:
    done = Reversal(str(refund["id"]), "refund", int(refund["amount"]))
    ledger.payments.confirm_refund(p.purchase_key, refund=done, inbox_id=inbox_id)


def _refund_failed_alert(
    p: Payment, reason: str, detail: str, *, level: Literal["error", "warning"] = "error"
) -> None:
    """The alert of a refund call Stripe failed (``reason``: our error class, or Stripe's
    error code, https://docs.stripe.com/error-codes)."""
    alert(
        "refund-failed",
        f"refund at Stripe not made: {detail}",
        provider="stripe",
        reason=reason,
        level=level,
        about={"purchase": p.purchase_key},
    )


def _failed(ledger: Ledger, p: Payment, exc: PaymentProviderUnavailable) -> None:
    """A 5xx answer may be kept under the key: the next call uses the next attempt's key. A
    timeout (no status), 409 (the key is in use) or 429 (not run) keeps the same key."""
    status = exc.fields.get("status")
    if not isinstance(status, int) or status < 500:
        return
    attempt = ledger.payments.refund_failed(
        p.purchase_key, attempt=p.refund_attempt, why=exc.reason
    )
    why = f"refund not made after {STUCK_AFTER_ATTEMPTS} failed attempts: retried every run"
    if attempt >= STUCK_AFTER_ATTEMPTS and ledger.payments.note(
        p.purchase_key, "alert", why, once=True
    ):
        log.error("purchase %s: %s (last: %s)", p.purchase_key, why, exc.reason)


def _refunded_by_others(
    ledger: Ledger, p: Payment, listed: list[dict[str, Any]], reason: str, inbox_id: str | None
) -> None:
    """Stripe has nothing left to refund (``charge_already_refunded``,
    https://docs.stripe.com/error-codes#charge-already-refunded) and none of it is ours: the
    money went back outside Refundry (a Dashboard refund not told yet). Those refunds are
    recorded by their ids, as their own events would record them, and the purchase is
    refunded without one of ours, every credit it landed taken back."""
    made = [r for r in listed if r.get("status") not in _NOT_MADE]
    if made:
        ledger.payments.record_reversals(
            p.purchase_key,
            [Reversal(str(r["id"]), "refund", int(r["amount"])) for r in made],
            charge_id=p.charge_id,
            reason="refunded at the provider",
        )
    why = f"{reason}: nothing left to refund, all given back at the provider"
    ledger.payments.mark_refunded_at_provider(
        p.purchase_key, reason=why, expected_state="refunding", inbox_id=inbox_id
    )


def _refused_under_chargeback(ledger: Ledger, p: Payment, inbox_id: str | None) -> None:
    """Stripe refuses to refund a charge under chargeback (error code ``charge_disputed``,
    https://docs.stripe.com/error-codes#charge-disputed): the dispute decides where the money
    goes, so the refund is given up rather than retried forever; the purchase goes back to
    where it was, and one alert says so. A lost dispute claws the pack back by its own id."""
    why = "Stripe refused the refund: the charge is under chargeback (charge_disputed)"
    if ledger.payments.abandon_refund(p.purchase_key, why=why, inbox_id=inbox_id):
        log.error("purchase %s: %s", p.purchase_key, why)
