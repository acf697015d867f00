"""Credit kinds and the charge mode in the refund policy file: the shipped rules, a later
version that changes one kind and inherits the others, the lot terms a grant of each kind
carries, and every bad value refused naming the key and its line."""

from __future__ import annotations

import pytest

from handlers.credit_kinds import DAY_MS, CreditKind, lot_terms
from handlers.policy_file import parse_policy, shipped_policy
from handlers.policy_rules import PolicyBook
from ledger.errors import InvalidLotTerms, PolicyError
from ledger.lots import LotTerms

HEAD = '[[version]]\nname = "a"\neffective = 2026-01-01T00:00:00Z\n'


def _book(text: str) -> PolicyBook:
    return parse_policy(text, source="policy.toml", base=shipped_policy().versions[-1].rules)


def test_the_shipped_policy_debits_and_expires_subscription_credits_after_cancellation() -> None:
    rules = shipped_policy().versions[-1].rules
    assert rules.charge_mode == "debit"
    assert rules.credit_kinds == {
        "subscription": CreditKind("after_cancellation", 60),
        "pack": CreditKind("never"),
        "promo": CreditKind("never"),
    }


def test_a_version_changes_one_kind_and_the_charge_mode_and_inherits_the_rest() -> None:
    book = _book(
        HEAD
        + 'charge_mode = "hold"\n\n[version.credit_kinds]\n'
        + 'subscription = { expires = "cycle_end" }\n'
        + 'bonus = { expires = "after_cancellation", days = 7 }\n'
    )
    rules = book.versions[0].rules
    assert rules.charge_mode == "hold"
    assert rules.credit_kinds == {
        "subscription": CreditKind("cycle_end"),
        "pack": CreditKind("never"),
        "promo": CreditKind("never"),
        "bonus": CreditKind("after_cancellation", 7),
    }
    assert rules.as_json()["credit_kinds"]["bonus"] == {"expires": "after_cancellation", "days": 7}


def test_a_grant_of_each_kind_carries_its_versions_terms() -> None:
    kinds = shipped_policy().versions[-1].rules.credit_kinds
    assert lot_terms(kinds, "subscription", subscription_id="sub_1") == LotTerms(
        "subscription", "after_cancellation", None, 60 * DAY_MS, "sub_1"
    )
    assert lot_terms(kinds, "pack") == LotTerms("pack")
    with pytest.raises(InvalidLotTerms):
        lot_terms(kinds, "subscription")  # whose cancellation starts the clock?
    with pytest.raises(InvalidLotTerms):
        lot_terms(kinds, "promo", cycle_ends_at_ms=1)
    with pytest.raises(InvalidLotTerms):
        lot_terms(kinds, "gift")
    cycle = {"subscription": CreditKind("cycle_end")}
    assert lot_terms(cycle, "subscription", cycle_ends_at_ms=5).expires_at_ms == 5


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        (HEAD + 'charge_mode = "later"\n', "version[1].charge_mode", 4),
        (
            HEAD + '\n[version.credit_kinds]\npack = { expires = "cycle_end" }\n',
            "version[1].credit_kinds.pack.expires",
            6,
        ),
        (
            HEAD + '\n[version.credit_kinds]\nsub = { expires = "soon" }\n',
            "version[1].credit_kinds.sub.expires",
            6,
        ),
        (
            HEAD + '\n[version.credit_kinds]\nsub = { expires = "after_cancellation" }\n',
            "version[1].credit_kinds.sub.days",
            6,
        ),
        (
            HEAD
            + '\n[version.credit_kinds]\nsub = { expires = "after_cancellation", days = -1 }\n',
            "version[1].credit_kinds.sub.days",
            6,
        ),
        (
            HEAD + '\n[version.credit_kinds]\nsub = { expires = "never", days = 3 }\n',
            "version[1].credit_kinds.sub.days",
            6,
        ),
        (
            HEAD + '\n[version.credit_kinds]\nsub = { expires = "never", color = 1 }\n',
            "version[1].credit_kinds.sub.color",
            6,
        ),
        (
            HEAD + '\n[version.credit_kinds]\nSub = { expires = "never" }\n',
            "version[1].credit_kinds.Sub",
            6,
        ),
        (HEAD + '\n[version.credit_kinds]\nsub = "never"\n', "version[1].credit_kinds.sub", 6),
        (
            HEAD + '\n[version.credit_kinds.sub]\nexpires = "soon"\n',
            "version[1].credit_kinds.sub.expires",
            6,
        ),
    ],
)
def test_a_bad_credit_kind_or_charge_mode_is_refused_naming_the_key_and_its_line(
    text: str, key: str, line: int
) -> None:
    with pytest.raises(PolicyError) as caught:
        _book(text)
    assert (caught.value.fields["key"], caught.value.fields["line"]) == (key, line)
