"""The platforms' promises about credit kinds, each one named test, on SQLite and
PostgreSQL: subscription credits expire 60 days after the subscription's cancellation while
pack credits stay (the shipped policy's rules), and a refunded generation's credits go back
to the kind they were taken from, whichever charge mode the policy in force at the charge
names."""

from __future__ import annotations

import pytest

from handlers.credit_kinds import DAY_MS, lot_terms
from handlers.generation import RefundPolicy, apply_result
from handlers.policy_file import parse_policy, shipped_policy
from handlers.policy_rules import PolicyBook
from ledger import Ledger, Settlement, audit, now_ms

PACK_CREDITS, SUBSCRIPTION_CREDITS = 50, 100
FAILED = {"object": "video", "status": "failed", "error": {"code": "internal_error"}}


def _subscription_credits(ledger: Ledger, book: PolicyBook, credits: int) -> None:
    rules = book.at(now_ms()).rules
    terms = lot_terms(rules.credit_kinds, "subscription", subscription_id="sub_1")
    ledger.grant(
        account_id="acct", credits=credits, idempotency_key="inv_1", reason="plan", terms=terms
    )


def _paid_pack(ledger: Ledger, credits: int) -> None:
    """A paid pack landed by the payment flow (its credits are of the ``pack`` kind)."""
    ledger.payments.observe(
        purchase_key="pi_1",
        provider="stripe",
        state="paid",
        account_id="acct",
        price_id="price_pack",
        credits=credits,
        amount=1900,
        currency="usd",
        paid_at_ms=now_ms(),
    )
    ledger.payments.grant("pi_1", reason="paid")


def test_subscription_credits_expire_60_days_after_cancellation_while_pack_credits_stay(
    ledger: Ledger,
) -> None:
    _subscription_credits(ledger, shipped_policy(), SUBSCRIPTION_CREDITS)
    _paid_pack(ledger, PACK_CREDITS)
    cancelled_at = now_ms()
    ledger.subscriptions.record_cancellation(
        subscription_id="sub_1", customer="cus_1", cancelled_at_ms=cancelled_at
    )
    sixty_days = cancelled_at + 60 * DAY_MS

    assert ledger.expire_due(at_ms=sixty_days - 1).lots == 0  # day 59 and 23:59:59.999
    assert ledger.funds("acct").kinds == {"pack": (50, 0), "subscription": (100, 0)}
    swept = ledger.expire_due(at_ms=sixty_days)
    assert (swept.lots, swept.credits) == (1, SUBSCRIPTION_CREDITS)
    assert ledger.expire_due(at_ms=sixty_days + DAY_MS).lots == 0  # once, however often

    assert ledger.funds("acct").kinds == {"pack": (PACK_CREDITS, 0), "subscription": (0, 0)}
    assert ledger.balance("acct") == PACK_CREDITS
    assert audit(ledger.db) == []


@pytest.mark.parametrize("charge_mode", ["debit", "hold"])
def test_refunded_generation_credits_go_back_to_their_kind(
    ledger: Ledger, charge_mode: str
) -> None:
    base = shipped_policy().versions[-1].rules
    head = '[[version]]\nname = "p"\neffective = 2020-01-01T00:00:00Z\n'
    text = f'{head}charge_mode = "{charge_mode}"\n'
    book = parse_policy(text, source="test", base=base)
    _subscription_credits(ledger, book, 10)
    _paid_pack(ledger, 20)
    ledger.under(book.at(now_ms()).name).charge(  # as the client records it
        generation_id="gen_1",
        account_id="acct",
        provider="openai",
        operation="video",
        credits=25,
        provider_job_id="video_gen_1",
        mode=book.at(now_ms()).rules.charge_mode,
    )
    spent = {"pack": (5, 0), "subscription": (0, 0)}  # the subscription's credits first
    held = {"pack": (20, 15), "subscription": (10, 10)}
    assert ledger.funds("acct").kinds == (spent if charge_mode == "debit" else held)

    applied = apply_result(
        ledger,
        provider="openai",
        payload={**FAILED, "id": "video_gen_1"},
        generation_id="gen_1",
        operation=None,
        failure_known_at_ms=now_ms(),
        policy=RefundPolicy(book),
    )

    assert applied.settlement is Settlement.REFUNDED
    assert ledger.funds("acct").kinds == {"pack": (20, 0), "subscription": (10, 0)}
    assert ledger.balance("acct") == 30 and ledger.funds("acct").held == 0
    assert audit(ledger.db) == []
