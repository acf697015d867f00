"""The rule a payment decision was made by, recorded with the decision (``payment_decisions
.rule``, read by ``refundry explain``): a key of the refund policy (``handlers.policy_file``)
where the policy decided, a promise Refundry always keeps where no policy key can change it,
and None for what is a fact rather than a rule (an alert, a wait, money already given back).

One table, so that the name a decision records and the key a policy file holds cannot drift
apart (``tests/unit/test_decision_rules.py`` holds the keys to the policy's).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["AFTER_CANCELLATION", "COMPLETED_BY", "completed", "decision_rule"]

AFTER_CANCELLATION: Final = "always: a charge after a confirmed cancellation is refunded"
"""Not a policy key: every version refunds a subscription charge made after its confirmed
cancellation (DESIGN, "The flow of a payment")."""

_REFUND_REASONS: Final[dict[str, str]] = {
    "unlanded_pack": "unlanded_pack_action",
    "duplicate": "duplicate_window_s",
    "early_fraud_warning": "fraud_action",
    "after_cancellation": AFTER_CANCELLATION,
}
"""A refund's reason word → the rule that gave the money back."""

_DECISIONS: Final[dict[str, str]] = {
    "grant": "packs",
    "duplicate": "duplicate_window_s",
    "keep": AFTER_CANCELLATION,  # a subscription charge paid before its cancellation
}
"""Any other decision → its rule."""


COMPLETED_BY: Final = "unlanded_pack_action = complete"
"""Said in the reason of a grant reconciliation made of a pack that had not landed."""


def completed(why: str, by_rule: bool) -> str:
    """The reason of the grant of a pack reconciliation completed: ``why`` it had not
    landed, naming the rule when ``unlanded_pack_action`` completed it (``by_rule``), not
    a purchase that had no money to give back or whose chargeback closed."""
    return f"{why} ({COMPLETED_BY})" if by_rule else why


def decision_rule(decision: str, reason: str) -> str | None:
    """The rule that made ``decision`` (``grant``, ``refund``, ``duplicate``, …) for
    ``reason``; None when no rule did (an alert, a wait, a fact read at the provider)."""
    if decision == "refund":
        # A refund's reason is its reason word, alone or after what led to it
        # ("<when>: after_cancellation"): the first word the table knows names the rule.
        found = (w for w in re.findall(r"[a-z_]+", reason) if w in _REFUND_REASONS)
        word = next(found, None)
        return None if word is None else _REFUND_REASONS[word]
    if decision == "grant" and COMPLETED_BY in reason:
        return "unlanded_pack_action"
    return _DECISIONS.get(decision)
