"""Whether a refund a customer asks for qualifies (``refundry eligibility``): judged by the
``[version.manual_refunds]`` rules of the policy version in force when the purchase was paid,
even after a newer version took effect. It decides nothing and writes nothing: a person, or
the platform's support tooling, makes the refund.

A request qualifies when the purchase is paid and its money is not going back already, it
is asked within ``window_days`` of the payment, and at most ``max_used_share`` of the pack's
credits were used (``used <= max_used_share * granted``, exactly: the share is the decimal
the policy file wrote).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

from handlers.policy_rules import PolicyBook, Rules, rfc3339
from ledger.errors import NothingKnownById
from ledger.history import History
from ledger.payment_types import Payment

__all__ = [
    "CreditsUsed",
    "Eligibility",
    "ManualRefundRules",
    "credits_used",
    "eligibility",
    "judge",
]

DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class ManualRefundRules:
    """``window_days``: whole days after the payment a request may come; ``max_used_share``:
    the largest share of the pack's credits used (0 to 1) that still qualifies."""

    window_days: int
    max_used_share: Decimal

    @classmethod
    def of(cls, rules: Rules) -> ManualRefundRules:
        """The manual-refund rules of a policy version's ``rules``."""
        table: Mapping[str, Any] = rules.manual_refunds
        return cls(int(table["window_days"]), Decimal(table["max_used_share"]))


@dataclass(frozen=True, slots=True)
class CreditsUsed:
    """A pack's credits (whole numbers): ``granted`` (net of claw-backs and restores),
    ``unspent`` of them, ``used`` = granted - unspent."""

    granted: int
    unspent: int
    used: int


def credits_used(history: History, payment: Payment, at_ms: int) -> CreditsUsed:
    """How many of ``payment``'s pack credits were used as the ledger stood at ``at_ms`` (ms
    since the epoch): the one place this is computed.

    ``granted`` is the pack's grant net of claw-backs and restores applied by then;
    ``unspent`` is what its own lot (``ledger.lots``, keyed by the grant) held then, credits
    reserved by a pending hold counting as unspent; ``used`` = granted - unspent, never
    below 0 (a claw-back that took credits from other lots). A pack granted before lots
    existed has no lot: its unspent credits are bounded by the account's balance now (the
    pack taken to be spent last), the least the ledger proves used. A pack not landed (or
    without an account) has granted nothing and used nothing."""
    entries = history.purchase_entries(payment.purchase_key)
    granted = max(0, sum(e.amount for e in entries if e.applied_at_ms <= at_ms))
    if granted == 0 or payment.account_id is None:
        return CreditsUsed(granted, granted, 0)
    grants = [e.idempotency_key for e in entries if e.kind == "grant"]
    remaining = history.lot_remaining(grants[0], at_ms) if grants else None
    if remaining is None:
        remaining = history.balance(payment.account_id)
    unspent = min(granted, max(0, remaining))
    return CreditsUsed(granted, unspent, granted - unspent)


@dataclass(frozen=True, slots=True)
class Eligibility:
    """The answer for one purchase: whether a refund asked at ``asked_at_ms`` qualifies
    under ``policy_version`` (the one in force at ``paid_at_ms``), each check's figures, and
    ``reasons`` (why, one line per check, in order)."""

    purchase_key: str
    account_id: str | None
    state: str
    paid_at_ms: int | None
    asked_at_ms: int
    policy_version: str
    rules: ManualRefundRules
    credits: CreditsUsed
    reasons: tuple[str, ...]
    qualifies: bool

    def as_json(self) -> dict[str, Any]:
        """Plain JSON values (``refundry eligibility --json``); times in RFC 3339."""
        return {
            "purchase": self.purchase_key,
            "account_id": self.account_id,
            "state": self.state,
            "paid_at": None if self.paid_at_ms is None else rfc3339(self.paid_at_ms),
            "asked_at": rfc3339(self.asked_at_ms),
            "policy_version": self.policy_version,
            "rules": {
                "manual_refunds.window_days": self.rules.window_days,
                "manual_refunds.max_used_share": float(self.rules.max_used_share),
            },
            "credits": {
                "granted": self.credits.granted,
                "unspent": self.credits.unspent,
                "used": self.credits.used,
            },
            "qualifies": self.qualifies,
            "reasons": list(self.reasons),
        }


def eligibility(
    history: History, book: PolicyBook, purchase_id: str, *, asked_at_ms: int
) -> Eligibility:
    """Whether a refund of ``purchase_id`` (a PaymentIntent, Checkout Session or charge id)
    asked at ``asked_at_ms`` (ms since the epoch) qualifies. Raises ``NothingKnownById`` for
    a purchase the ledger has never seen."""
    payment = history.purchase(purchase_id)
    if payment is None:
        raise NothingKnownById("no purchase has this id", purchase=purchase_id)
    paid = payment.paid_at_ms
    version = book.at(asked_at_ms if paid is None else paid)
    rules = ManualRefundRules.of(version.rules)
    used = credits_used(history, payment, asked_at_ms)
    qualifies, reasons = judge(payment, asked_at_ms, rules, used)
    return Eligibility(
        purchase_key=payment.purchase_key,
        account_id=payment.account_id,
        state=payment.state,
        paid_at_ms=paid,
        asked_at_ms=asked_at_ms,
        policy_version=version.name,
        rules=rules,
        credits=used,
        reasons=reasons,
        qualifies=qualifies,
    )


def judge(
    payment: Payment, asked_at_ms: int, rules: ManualRefundRules, used: CreditsUsed
) -> tuple[bool, tuple[str, ...]]:
    """Whether a request asked at ``asked_at_ms`` qualifies under ``rules``, and why: one
    line for each check (the purchase's state, the window, the share used), in order."""
    checks = [
        _state(payment),
        _window(payment.paid_at_ms, asked_at_ms, rules),
        _share(used, rules),
    ]
    return all(ok for ok, _ in checks), tuple(why for _, why in checks)


def _state(p: Payment) -> tuple[bool, str]:
    if p.state in ("unpaid", "failed") or p.paid_at_ms is None:
        return False, f"state {p.state}: not paid, nothing to refund"
    if p.state in ("refunding", "refunded"):
        why = f" ({p.refund_reason})" if p.refund_reason else ""
        return False, f"state {p.state}: its money is already going back{why}"
    if p.amount is not None and p.refunded_amount >= p.amount > 0:
        return False, "its money was already given back at the payment provider"
    return True, f"state {p.state}: paid"


def _window(paid_at_ms: int | None, asked_at_ms: int, rules: ManualRefundRules) -> tuple[bool, str]:
    limit = f"manual_refunds.window_days = {rules.window_days}"
    if paid_at_ms is None:
        return False, f"never paid: no window ({limit})"
    elapsed = asked_at_ms - paid_at_ms
    days = f"{elapsed / DAY_MS:.2f} days after payment"
    edge = rules.window_days * DAY_MS
    if elapsed != edge and f"{elapsed / DAY_MS:.2f}" == f"{rules.window_days:.2f}":
        sign = "+" if elapsed > edge else "-"  # rounded, it would read as the limit itself
        days = f"{rules.window_days} days {sign} {abs(elapsed - edge)} ms after payment"
    if elapsed < 0:
        return False, f"asked before the payment ({limit})"
    if elapsed <= rules.window_days * DAY_MS:
        return True, f"asked {days}: within {limit}"
    return False, f"asked {days}: outside {limit}"


def _share(used: CreditsUsed, rules: ManualRefundRules) -> tuple[bool, str]:
    limit = f"manual_refunds.max_used_share = {rules.max_used_share}"
    share = Fraction(used.used, used.granted) if used.granted else Fraction(0)
    figures = f"{used.used} of {used.granted} credits used ({float(share):.1%})"
    if share <= Fraction(rules.max_used_share):
        return True, f"{figures}: at most {limit}"
    return False, f"{figures}: more than {limit}"
