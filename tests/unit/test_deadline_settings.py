"""REFUNDRY_DEADLINES: each pair is a positive hard deadline after a poll time, and every
deadline is checked against the configured promise (REFUNDRY_REFUND_SLA_MS), never a fixed
hour."""

from __future__ import annotations

import json

import pytest

from handlers.deadlines import DeadlinePolicy
from ledger.errors import ConfigurationError
from workers.budgets import Budgets
from workers.settings import Settings


def _checked(env: dict[str, str]) -> None:
    """What ``workers.runtime.settings`` does at start: read, then check every budget."""
    read = Settings.from_env(env)
    Budgets(read).check(DeadlinePolicy.from_json(read.deadlines_json))


@pytest.mark.parametrize("pair", [[0, 0], [600, 600], [900, 600], [5, 0]])
def test_deadlines_must_be_positive_with_the_poll_before_the_hard_deadline(
    pair: list[int],
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"REFUNDRY_DEADLINES": json.dumps({"video": pair})})
    assert caught.value.fields["variable"] == "REFUNDRY_DEADLINES"
    assert caught.value.fields["key"] == "video"


def test_deadlines_are_checked_against_the_configured_promise() -> None:
    two_hours = {"REFUNDRY_REFUND_SLA_MS": str(2 * 3_600_000)}
    # 7000 s + a lease (60), an interval (10) and a poll budget (20): 7090 s of 7200.
    _checked(two_hours | {"REFUNDRY_DEADLINES": json.dumps({"video": [600, 7000]})})
    with pytest.raises(ConfigurationError) as caught:
        _checked(two_hours | {"REFUNDRY_DEADLINES": json.dumps({"video": [600, 7150]})})
    assert caught.value.fields["path"] == "stuck generation"
    assert caught.value.fields["promise_s"] == 7200
