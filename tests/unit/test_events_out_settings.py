"""Events out's settings are checked at start: the endpoint and its ``whsec_`` secret go
together, and a secret that is not ``whsec_`` + base64 of at least 24 bytes is refused by
name, never repeated. The backoff doubles from its base, is jittered, and is capped."""

from __future__ import annotations

import base64

import pytest

from handlers.events_out import backoff_ms
from ledger.errors import ConfigurationError
from workers.setting_values import events_out_of
from workers.settings import Settings

GOOD = "whsec_" + base64.b64encode(b"k" * 32).decode()
URL = "https://platform.example/refundry-events"
U, S = "REFUNDRY_EVENTS_URL", "REFUNDRY_EVENTS_SECRET"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"REFUNDRY_EVENTS_URL": URL}, "REFUNDRY_EVENTS_SECRET"),
        ({"REFUNDRY_EVENTS_SECRET": GOOD}, "REFUNDRY_EVENTS_SECRET"),
        (
            {"REFUNDRY_EVENTS_URL": URL, "REFUNDRY_EVENTS_SECRET": "whsec_c2hvcnQ="},
            "REFUNDRY_EVENTS_SECRET",
        ),
        (
            {"REFUNDRY_EVENTS_URL": URL, "REFUNDRY_EVENTS_SECRET": "whsec_!!not base64!!"},
            "REFUNDRY_EVENTS_SECRET",
        ),
        ({"REFUNDRY_EVENTS_URL": "ftp://x", "REFUNDRY_EVENTS_SECRET": GOOD}, "REFUNDRY_EVENTS_URL"),
        (
            {"REFUNDRY_EVENTS_URL": "https://u:p@x/", "REFUNDRY_EVENTS_SECRET": GOOD},
            "REFUNDRY_EVENTS_URL",
        ),
    ],
)
def test_unusable_events_settings_are_refused_by_name_without_the_secret(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env)
    assert caught.value.fields["variable"] == variable
    secret = env.get(S, "")
    assert not secret or secret.removeprefix("whsec_") not in str(caught.value)


def test_events_out_are_off_without_a_url_and_configured_with_one() -> None:
    assert events_out_of(Settings.from_env({})) is None
    s = Settings.from_env({U: URL, S: GOOD})
    config = events_out_of(s)
    assert config is not None and config.give_up_ms == 3 * 86_400_000
    assert GOOD not in repr(s) and GOOD not in repr(config)


def test_the_backoff_doubles_is_jittered_and_capped() -> None:
    low = [backoff_ms(n, base_ms=1_000, cap_ms=60_000, rng=lambda: 0.0) for n in range(1, 9)]
    high = [backoff_ms(n, base_ms=1_000, cap_ms=60_000, rng=lambda: 1.0) for n in range(1, 9)]
    assert high == [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
    assert low == [h // 2 for h in high]
    assert backoff_ms(10_000, base_ms=5_000, cap_ms=21_600_000, rng=lambda: 1.0) == 21_600_000


@pytest.mark.parametrize(
    "secret",
    ["notwhsec", base64.b64encode(b"k" * 32).decode(), GOOD + "," + GOOD.removeprefix("whsec_")],
)
def test_a_secret_without_the_whsec_prefix_is_refused_for_that_without_echoing_it(
    secret: str,
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({U: URL, S: secret})
    message = str(caught.value)
    assert "whsec_ prefix is missing" in message and "too short" not in message
    assert caught.value.fields["variable"] == S
    assert all(part.removeprefix("whsec_") not in message for part in secret.split(","))
