"""Credit kinds in the refund policy: each kind's expiry rule, and the lot terms a grant of
that kind carries (``ledger.lots.LotTerms``).

In a policy version (``handlers.policy_file``)::

    charge_mode = "debit"                  # or "hold" (ledger.holds)

    [version.credit_kinds]
    subscription = { expires = "after_cancellation", days = 60 }
    pack = { expires = "never" }
    promo = { expires = "never" }

``expires`` is ``never``, ``cycle_end`` (the billing cycle's end, given with the grant) or
``after_cancellation`` (``days`` after the subscription's confirmed cancellation). A kind's
terms are fixed on its credits when they are granted, under the version in force then.
Pack credits never expire: a paid pack's grant is written by the payment flow with
``ledger.lots.PACK``, so a policy may not give ``pack`` another rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ledger.errors import InvalidLotTerms
from ledger.holds import CHARGE_MODES
from ledger.lots import EXPIRY_RULES, LotTerms

__all__ = ["CHARGE_MODES", "CreditKind", "KindProblem", "lot_terms", "read_kind"]

DAY_MS: Final = 86_400_000
MAX_DAYS: Final = 3650


@dataclass(frozen=True, slots=True)
class CreditKind:
    """One kind's expiry: ``expires`` (one of ``ledger.lots.EXPIRY_RULES``) and, for
    ``after_cancellation``, ``days`` (whole days after the cancellation)."""

    expires: str
    days: int | None = None

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"expires": self.expires}
        if self.days is not None:
            shown["days"] = self.days
        return shown


class KindProblem(ValueError):
    """What is wrong with one kind's rule: ``key`` names the key inside it (or None)."""

    def __init__(self, what: str, key: str | None = None) -> None:
        super().__init__(what)
        self.key = key


def read_kind(name: str, value: Any) -> CreditKind:
    """One ``credit_kinds`` entry of a policy file; raises :class:`KindProblem`."""
    try:
        LotTerms(credit_kind=name)
    except InvalidLotTerms:
        raise KindProblem("a credit kind is 1 to 32 lowercase letters, digits or _") from None
    if not isinstance(value, Mapping):
        raise KindProblem('must be a table: { expires = "never" }')
    for key in value:
        if key not in ("expires", "days"):
            raise KindProblem("unknown key (a credit kind holds expires and days)", key)
    expires = value.get("expires")
    if expires not in EXPIRY_RULES:
        raise KindProblem(f"must be one of: {', '.join(EXPIRY_RULES)}", "expires")
    days = value.get("days")
    if expires == "after_cancellation":
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_DAYS:
            raise KindProblem(f"must be a whole number of days from 0 to {MAX_DAYS}", "days")
    elif days is not None:
        raise KindProblem("only after_cancellation takes days", "days")
    if name == "pack" and expires != "never":
        raise KindProblem("pack credits never expire (the payment flow grants them)", "expires")
    return CreditKind(str(expires), days)


def lot_terms(
    kinds: Mapping[str, CreditKind],
    kind: str,
    *,
    subscription_id: str | None = None,
    cycle_ends_at_ms: int | None = None,
) -> LotTerms:
    """The terms of a grant of ``kind`` under a version's ``kinds``: ``cycle_ends_at_ms``
    (ms since the epoch) is required by ``cycle_end``, ``subscription_id`` by
    ``after_cancellation``. Raises ``InvalidLotTerms`` for a kind the version does not
    name or a missing or unneeded argument."""
    rule = kinds.get(kind)
    if rule is None:
        raise InvalidLotTerms(
            f"not a credit kind of this policy version ({', '.join(sorted(kinds))})",
            field="credit_kind",
            credit_kind=kind,
        )
    if rule.expires != "cycle_end" and cycle_ends_at_ms is not None:
        raise InvalidLotTerms(
            f"{kind} credits do not expire at a cycle's end", field="cycle_ends_at_ms"
        )
    if rule.expires == "cycle_end" and cycle_ends_at_ms is None:
        raise InvalidLotTerms(f"{kind} credits expire at a cycle's end", field="cycle_ends_at_ms")
    after = None if rule.days is None else rule.days * DAY_MS
    return LotTerms(
        credit_kind=kind,
        expiry_rule=rule.expires,
        expires_at_ms=cycle_ends_at_ms,
        after_cancellation_ms=after,
        subscription_id=subscription_id,
    )
