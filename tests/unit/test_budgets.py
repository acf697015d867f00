"""Every budget derives from one settings object, and each path's worst case refunds inside
the one-hour promise; settings that would break it are refused by name."""

from __future__ import annotations

import re

import pytest

import workers.settings as settings_module
from handlers.deadlines import DeadlinePolicy
from ledger.errors import ConfigurationError
from workers.budgets import Budgets
from workers.settings import VARIABLES, Settings

HOUR_MS = 60 * 60 * 1000


def test_every_paths_worst_case_refunds_inside_the_hour_by_default() -> None:
    budgets = Budgets(Settings.from_env({}))
    # One status call: 5 attempts timing out at 10 s, 4 waits of at most 30 s.
    assert budgets.status_call_worst_s == 5 * 10 + 4 * 30
    # Backoff before retry n: at most twice 1 s · 2ⁿ, capped at 5 minutes; 8 retries.
    assert budgets.retry_backoff_worst_ms == 1000 * (2 + 4 + 8 + 16 + 32 + 64 + 128 + 256)
    assert budgets.result_path_worst_ms == 9 * (170 + 30) * 1000 + 510_000
    assert budgets.lost_message_worst_ms == 30_000 + 10_000 + 200_000
    # The latest default hard deadline (training, 50 min), a lease, an interval, a budget.
    assert budgets.stuck_path_worst_ms(DeadlinePolicy()) == 50 * 60_000 + (60 + 10 + 20) * 1000
    for worst in (
        budgets.result_path_worst_ms,
        budgets.lost_message_worst_ms,
        budgets.stuck_path_worst_ms(DeadlinePolicy()),
    ):
        assert worst < HOUR_MS
    budgets.check(DeadlinePolicy())


def test_the_results_actor_is_never_cut_during_a_status_call_the_retry_rules_allow() -> None:
    for attempts, timeout, wait in [(5, 10, 30), (3, 20, 5), (1, 60, 0)]:
        budgets = Budgets(
            Settings.from_env(
                {
                    "REFUNDRY_STATUS_ATTEMPTS": str(attempts),
                    "REFUNDRY_STATUS_TIMEOUT_S": str(timeout),
                    "REFUNDRY_STATUS_MAX_WAIT_S": str(wait),
                }
            )
        )
        slowest_call_ms = (attempts * timeout + (attempts - 1) * wait) * 1000
        assert budgets.result_time_limit_ms > slowest_call_ms


@pytest.mark.parametrize(
    ("variable", "value", "path"),
    [
        ("REFUNDRY_STATUS_ATTEMPTS", "40", "result"),
        ("REFUNDRY_MIN_BACKOFF_MS", "600000", "result"),
        ("REFUNDRY_INBOX_GRACE_MS", "3600000", "lost message"),
        ("REFUNDRY_POLL_INTERVAL_S", "900", "stuck generation"),
    ],
)
def test_settings_that_would_refund_late_are_refused_naming_the_path(
    variable: str, value: str, path: str
) -> None:
    from workers import runtime

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(variable, value)
        runtime.reset()
        with pytest.raises(ConfigurationError) as caught:
            runtime.settings()
    runtime.reset()
    assert caught.value.fields["path"] == path
    assert caught.value.fields["worst_case_s"] * 1000 > caught.value.fields["refund_sla_ms"]


def test_each_default_is_written_once_and_the_table_says_the_same() -> None:
    doc = settings_module.__doc__ or ""
    rows = dict(re.findall(r"^\| ``([A-Z_]+)`` \| ``([^`]*)`` \|", doc, re.M))
    defaults = Settings.from_env({})
    for variable, (name, _) in VARIABLES.items():
        value = getattr(defaults, name)
        if variable in rows:
            shown = rows[variable]
            assert shown == (str(value).lower() if isinstance(value, bool) else str(value)), (
                variable
            )
