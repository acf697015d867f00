"""The pack catalog and the payment policy: which price buys how many credits, and what to
do with unlanded packs, duplicate charges and fraud warnings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from handlers.setting_json import json_object_setting, whole_number_setting
from ledger.audit import LANDING_WINDOW_MS
from ledger.credits import MAX_CREDITS
from ledger.errors import ConfigurationError, PackUnknown
from providers.stripe import LineItem

__all__ = [
    "FRAUD_ACTIONS",
    "UNLANDED_ACTIONS",
    "Pack",
    "PackCatalog",
    "PackUnknown",
    "PaymentPolicy",
]

UNLANDED_ACTIONS: Final = ("complete", "refund")
FRAUD_ACTIONS: Final = ("refund_and_revoke", "alert")


@dataclass(frozen=True, slots=True)
class Pack:
    """What one purchase bought: ``credits`` (a whole number) and ``price_id``, the price id
    when it is one item of quantity one, else every ``price*quantity`` joined by ``+``."""

    price_id: str
    credits: int


@dataclass(frozen=True, slots=True)
class PackCatalog:
    credits_by_price: dict[str, int] = field(default_factory=dict)

    def credits_for(self, price_id: str) -> int:
        """Credits of one unit of ``price_id``; :class:`PackUnknown` outside the catalog."""
        try:
            return self.credits_by_price[price_id]
        except KeyError:
            raise PackUnknown(price_id=price_id) from None

    def pack_for(self, items: Sequence[LineItem]) -> Pack:
        """The pack a Checkout Session's line items add up to: each item's credits times its
        quantity, summed. A price outside the catalog, or no item, raises
        :class:`PackUnknown` naming it: a purchase is never guessed at."""
        if not items:
            raise PackUnknown("no line items")
        lines = sorted((item.price_id, item.quantity) for item in items)
        credits = sum(self.credits_for(price) * quantity for price, quantity in lines)
        if len(lines) == 1 and lines[0][1] == 1:
            return Pack(lines[0][0], credits)
        return Pack("+".join(f"{price}*{quantity}" for price, quantity in lines), credits)

    @classmethod
    def from_json(cls, text: str) -> PackCatalog:
        """``REFUNDRY_PACKS``: a JSON object of price id → credits, each a whole number from
        1 to ``MAX_CREDITS`` (``2.5``, ``true`` or ``1e400`` are refused, never rounded);
        ``ConfigurationError`` naming the variable otherwise."""
        if not text.strip():
            return cls()
        raw = json_object_setting(text, variable="REFUNDRY_PACKS")
        return cls(
            {
                price: whole_number_setting(
                    credits,
                    variable="REFUNDRY_PACKS",
                    what="credits",
                    low=1,
                    high=MAX_CREDITS,
                    key=price,
                )
                for price, credits in raw.items()
            }
        )


@dataclass(frozen=True, slots=True)
class PaymentPolicy:
    landing_window_ms: int = LANDING_WINDOW_MS
    """A paid pack not granted this long after payment is reconciled (0: by the next
    reconciliation run, with no grace)."""
    unlanded_action: str = "complete"
    """``complete`` (grant now) or ``refund`` (give the money back)."""
    duplicate_window_ms: int = 10 * 60_000
    """Same buyer (the Stripe customer, else the account: a guest checkout has no customer),
    pack and amount paid twice within this window: the later payment is refunded, whichever
    order their events arrive in. 0 turns the rule off (no purchase is a duplicate)."""
    fraud_action: str = "refund_and_revoke"
    """On an early fraud warning: ``refund_and_revoke`` or ``alert`` only."""

    def __post_init__(self) -> None:
        if self.unlanded_action not in UNLANDED_ACTIONS:
            raise ConfigurationError("must be complete or refund", variable="UNLANDED_PACK_ACTION")
        if self.fraud_action not in FRAUD_ACTIONS:
            raise ConfigurationError(
                "must be refund_and_revoke or alert", variable="REFUNDRY_FRAUD_ACTION"
            )
