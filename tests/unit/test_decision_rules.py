"""The rule each decision records: a key the policy file really has (or a promise no
version can change), so that ``refundry explain`` names what a reader can find and edit."""

from __future__ import annotations

import pytest

from handlers.generation import SUCCESS_KEPT, RefundPolicy, Verdict
from handlers.policy_file import parse_policy, shipped_policy
from ledger import Generation, Outcome
from ledger.decision_rules import AFTER_CANCELLATION, COMPLETED_BY, decision_rule

POLICY_KEYS = set(shipped_policy().versions[-1].rules.as_json())


@pytest.mark.parametrize(
    ("decision", "reason", "rule"),
    [
        ("refund", "unlanded_pack", "unlanded_pack_action"),
        ("refund", "duplicate", "duplicate_window_s"),
        ("refund", "early_fraud_warning", "fraud_action"),
        ("refund", "paid at 5 ms, sub_1 cancelled at 2 ms: after_cancellation", AFTER_CANCELLATION),
        ("duplicate", "same pack as pi_1", "duplicate_window_s"),
        ("grant", "pack price_1", "packs"),
        ("grant", f"pack price_1: not landed (1 h) ({COMPLETED_BY})", "unlanded_pack_action"),
        ("refund", "retry", None),
        ("alert", "duplicate refund failed", None),
        ("refunded_at_provider", "money already given back", None),
    ],
)
def test_each_payment_decision_names_the_rule_that_made_it(
    decision: str, reason: str, rule: str | None
) -> None:
    assert decision_rule(decision, reason) == rule
    assert rule is None or rule in POLICY_KEYS or rule.startswith("always: ")


def _generation(provider: str, operation: str) -> Generation:
    return Generation("g1", "acct", provider, "job-1", operation, 10, 1_767_225_600_000, None, None)


def test_a_generations_verdict_names_the_most_specific_key_that_decided_it() -> None:
    book = parse_policy(
        '[[version]]\nname = "a"\neffective = 2026-01-01T00:00:00Z\n'
        '[version.outcomes]\n"kling:video" = ["failed"]\ntraining = ["failed"]\n',
        source="policy.toml",
        base=shipped_policy().versions[-1].rules,
    )
    policy = RefundPolicy(book)

    def judge(generation: Generation, outcome: Outcome) -> Verdict:
        return policy.judge(generation, outcome, None)  # no charge entry: by charge time

    kept = judge(_generation("kling", "video"), Outcome.MODERATED)
    assert (kept.refund, kept.policy_version, kept.rule) == (False, "a", "outcomes.kling:video")
    assert judge(_generation("fal", "training"), Outcome.FAILED).rule == "outcomes.training"
    assert judge(_generation("fal", "video"), Outcome.MODERATED).rule == "refund_outcomes"
    success = judge(_generation("fal", "video"), Outcome.SUCCEEDED)
    assert (success.refund, success.rule) == (False, SUCCESS_KEPT)
