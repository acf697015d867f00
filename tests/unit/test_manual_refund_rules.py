"""``[version.manual_refunds]``: when a refund a customer asks for qualifies. Its keys are
inherited key by key like every table, and a bad one is refused naming the key and its line;
the checks of ``refundry eligibility`` are exact at their bounds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.manual_refunds import CreditsUsed, ManualRefundRules, judge
from handlers.policy_file import parse_policy, shipped_policy
from handlers.policy_rules import PolicyBook
from ledger.errors import PolicyError
from ledger.payment_types import Payment

HEAD = '[[version]]\nname = "a"\neffective = 2026-01-01T00:00:00Z\n'
DAY_MS = 86_400_000


def _book(text: str) -> PolicyBook:
    return parse_policy(text, source="policy.toml", base=shipped_policy().versions[-1].rules)


def test_the_shipped_default_allows_seven_days_and_a_fifth_of_the_pack() -> None:
    rules = ManualRefundRules.of(shipped_policy().versions[-1].rules)
    assert rules == ManualRefundRules(7, Decimal("0.2"))
    shown = shipped_policy().versions[-1].rules.as_json()["manual_refunds"]
    assert shown == {"max_used_share": 0.2, "window_days": 7}


def test_a_later_version_changes_one_key_and_inherits_the_other() -> None:
    book = _book(
        HEAD + "\n[version.manual_refunds]\nwindow_days = 14\n"
        '\n[[version]]\nname = "b"\neffective = 2026-03-01T00:00:00Z\n'
        "\n[version.manual_refunds]\nmax_used_share = 0.5\n"
    )
    first, second = (ManualRefundRules.of(v.rules) for v in book.versions)
    assert first == ManualRefundRules(14, Decimal("0.2"))
    assert second == ManualRefundRules(14, Decimal("0.5"))


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("window_days = -1", "window_days"),
        ("window_days = 1.5", "window_days"),
        ('window_days = "7"', "window_days"),
        ("max_used_share = 1.2", "max_used_share"),
        ("max_used_share = -0.1", "max_used_share"),
        ("max_used_share = nan", "max_used_share"),
        ("max_used_share = true", "max_used_share"),
        ("max_share = 0.2", "max_share"),
    ],
)
def test_a_bad_manual_refund_rule_is_refused_naming_the_key_and_its_line(
    body: str, key: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        _book(HEAD + "\n[version.manual_refunds]\n" + body + "\n")
    assert caught.value.fields["key"] == f"version[1].manual_refunds.{key}"
    assert caught.value.fields["line"] == 6


RULES = ManualRefundRules(7, Decimal("0.2"))
PAID = 1_767_225_600_000


def _paid(state: str) -> Payment:
    """A pack of 500 credits paid at ``PAID``, in ``state``."""
    return Payment(
        purchase_key="pi_1",
        provider="stripe",
        state=state,
        account_id="acct",
        price_id="price_pack500",
        credits=500,
        amount=1900,
        currency="usd",
        customer="cus_1",
        charge_id="ch_1",
        session_id="cs_1",
        paid_at_ms=PAID,
        refunded_amount=0,
        clawed_credits=0,
        refund_reason=None,
        flag=None,
    )


@pytest.mark.parametrize(
    ("asked_after_ms", "used", "qualifies"),
    [
        (7 * DAY_MS, 100, True),  # the last moment of the window, exactly a fifth used
        (7 * DAY_MS + 1, 0, False),  # a millisecond late
        (0, 101, False),  # one credit over a fifth
        (-1, 0, False),  # asked before it was paid
    ],
)
def test_the_window_and_the_share_are_exact_at_their_bounds(
    asked_after_ms: int, used: int, qualifies: bool
) -> None:
    credits = CreditsUsed(granted=500, unspent=500 - used, used=used)
    ok, reasons = judge(_paid("granted"), PAID + asked_after_ms, RULES, credits)
    assert ok is qualifies
    assert len(reasons) == 3 and all(reasons)


def test_a_pack_whose_money_is_going_back_never_qualifies() -> None:
    ok, reasons = judge(_paid("refunding"), PAID, RULES, CreditsUsed(500, 500, 0))
    assert not ok
    assert reasons[0].startswith("state refunding")


@given(
    window_days=st.integers(0, 3650),
    percent=st.integers(0, 100),
    granted=st.integers(0, 10**6),
    used_share=st.floats(0, 1),
    asked_after_ms=st.integers(-DAY_MS, 4000 * DAY_MS),
    state=st.sampled_from(["paid", "granted", "refunding", "refunded", "unpaid"]),
)
def test_a_request_qualifies_exactly_when_every_rule_holds(
    window_days: int,
    percent: int,
    granted: int,
    used_share: float,
    asked_after_ms: int,
    state: str,
) -> None:
    used = int(granted * used_share)
    rules = ManualRefundRules(window_days, Decimal(percent) / 100)
    credits = CreditsUsed(granted, granted - used, used)
    ok, _ = judge(_paid(state), PAID + asked_after_ms, rules, credits)
    # The model: whole numbers only (percent of the pack, ms of the window).
    expected = (
        state in ("paid", "granted")
        and 0 <= asked_after_ms <= window_days * DAY_MS
        and used * 100 <= percent * granted
    )
    assert ok is expected
