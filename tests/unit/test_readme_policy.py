"""README's "Refund policy" file is a policy Refundry accepts, and says what it claims: two
versions, the second stating only what changed."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from handlers.manual_refunds import ManualRefundRules
from handlers.policy_file import parse_policy, shipped_policy
from ledger.outcomes import Outcome

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_policy_file_is_accepted_as_two_versions() -> None:
    section = README.read_text(encoding="utf-8").split("## Refund policy", 1)[1]
    found = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert found is not None, "no policy file in README's Refund policy section"
    book = parse_policy(found.group(1), source="README", base=shipped_policy().versions[-1].rules)
    first, second = book.versions
    assert (first.name, second.name) == ("2026-01", "2026-03")
    assert Outcome.MODERATED in first.rules.refund_outcomes
    assert Outcome.MODERATED not in second.rules.refund_outcomes
    assert second.rules.refunds("fal", "training", Outcome.MODERATED)
    assert second.rules.unlanded_pack_action == "refund"  # inherited
    assert ManualRefundRules.of(second.rules) == ManualRefundRules(14, Decimal("0.2"))
