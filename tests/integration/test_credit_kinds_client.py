"""Credit kinds, holds and expiry through the pipeline's API (``workers.client``) and the
scheduler's sweeps, under a policy file whose version in force holds charges: the charge
mode and each kind's expiry come from the policy, not from the caller."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import now_ms
from ledger.errors import InvalidLotTerms
from tests.support.stuck import MINUTE
from workers import client, runtime

HOLDING = """
[[version]]
name = "holds-2026"
effective = 2026-01-01T00:00:00Z
charge_mode = "hold"

[version.credit_kinds]
subscription = { expires = "after_cancellation", days = 30 }
"""


@pytest.fixture
def holding_policy(
    refundry_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(HOLDING, encoding="utf-8")
    monkeypatch.setenv("REFUNDRY_POLICY", str(path))
    runtime.reset()


def test_the_policy_in_force_holds_the_charge_and_the_sweeps_void_and_expire(
    holding_policy: None,
) -> None:
    from workers.sweeps import run_expiry_sweep, run_stuck_sweep

    client.grant(
        account_id="acct",
        credits=40,
        idempotency_key="inv_1",
        reason="plan",
        credit_kind="subscription",
        subscription_id="sub_1",
    )
    client.grant(account_id="acct", credits=10, idempotency_key="promo_1", reason="welcome")
    left = client.charge(
        generation_id="gen_1", account_id="acct", provider="fal", operation="video", credits=25
    )
    funds = runtime.ledger().funds("acct")
    assert (left, funds.balance, funds.held) == (25, 50, 25)  # held, not spent

    charged = runtime.ledger().generation("gen_1")
    assert charged is not None
    assert run_stuck_sweep(at_ms=charged.charged_at_ms + 24 * 60 * MINUTE).refunded_as_lost == 1
    funds = runtime.ledger().funds("acct")
    assert (funds.balance, funds.held) == (50, 0)  # voided at the deadline: never charged

    cancelled = now_ms()
    runtime.ledger().subscriptions.record_cancellation(
        subscription_id="sub_1", customer="cus_1", cancelled_at_ms=cancelled
    )
    assert run_expiry_sweep(at_ms=cancelled + 30 * 24 * 60 * MINUTE).credits == 40
    assert run_expiry_sweep(at_ms=cancelled + 31 * 24 * 60 * MINUTE).credits == 0
    assert client.balance("acct") == 10
    assert runtime.ledger().funds("acct").kinds == {"promo": (10, 0), "subscription": (0, 0)}


def test_a_grant_of_a_kind_the_policy_does_not_name_is_refused_and_stores_nothing(
    holding_policy: None,
) -> None:
    with pytest.raises(InvalidLotTerms):
        client.grant(
            account_id="acct", credits=5, idempotency_key="k", reason="r", credit_kind="gift"
        )
    with pytest.raises(InvalidLotTerms):
        client.grant(
            account_id="acct",
            credits=5,
            idempotency_key="k",
            reason="r",
            credit_kind="subscription",
        )
    assert runtime.ledger().find_balance("acct") is None
