"""Settings refuse what they cannot use."""

from __future__ import annotations

import pytest

from ledger.errors import ConfigurationError
from workers.settings import Settings


def test_settings_defaults_run_on_a_fresh_machine() -> None:
    s = Settings.from_env({})
    assert s.redis_url is None
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("ledger.sqlite3")
    assert (s.max_retries, s.min_backoff_ms, s.max_backoff_ms) == (8, 1_000, 300_000)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REFUNDRY_MAX_RETRIES", "many"),
        ("REFUNDRY_MAX_RETRIES", "-1"),
        ("REFUNDRY_REFUND_CANCELLED", "perhaps"),
    ],
)
def test_unusable_settings_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({name: value})
    assert caught.value.fields["variable"] == name


def test_every_operation_has_a_deadline_inside_the_refund_promise() -> None:
    from handlers.deadlines import DEFAULT_DEADLINES
    from handlers.sla import REFUND_SLA_MS as SLA_MS
    from providers.base import OPERATIONS

    assert set(DEFAULT_DEADLINES) == set(OPERATIONS)
    for deadline in DEFAULT_DEADLINES.values():
        assert deadline.poll_after_ms < deadline.hard_ms <= SLA_MS - 5 * 60_000


def test_settings_never_print_a_secret() -> None:
    planted = "s3cr3t-Planted-Value-0042"
    shown = repr(
        Settings.from_env(
            {
                "DATABASE_URL": f"postgresql://refundry:{planted}@db.internal/refundry",
                "REDIS_URL": f"redis://:{planted}@127.0.0.1:6379/0",
                "STRIPE_API_KEY": f"sk_test_{planted}",
                "STRIPE_WEBHOOK_SECRET": f"whsec_{planted}",
                "OPENAI_API_KEY": planted,
                "REPLICATE_API_TOKEN": planted,
                "SUNO_API_KEY": planted,
                "KLING_ACCESS_KEY": planted,
                "KLING_SECRET_KEY": planted,
            }
        )
    )
    assert "policy_version=" in shown
    assert planted not in shown
