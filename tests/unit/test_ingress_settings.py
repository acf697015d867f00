"""The ingress' settings: its signing secrets never print, unusable values are refused by
name, and fal's route is on with the documented key set unless turned off."""

from __future__ import annotations

import pytest

from handlers.fal_signatures import FAL_JWKS_URL
from ledger.errors import ConfigurationError
from workers.settings import Settings


def test_the_webhook_secrets_never_print() -> None:
    planted = "whsec_UGxhbnRlZC1TZWNyZXQtVmFsdWUtMDA0Mg=="
    names = ("OPENAI", "KLING", "REPLICATE", "SUNO", "STRIPE")
    settings = Settings.from_env({f"{name}_WEBHOOK_SECRET": planted for name in names})
    assert settings.kling_webhook_secret == planted
    assert planted not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REFUNDRY_MAX_BODY_BYTES", "0"),
        ("REFUNDRY_MAX_BODY_BYTES", "big"),
        ("REFUNDRY_INGRESS_DEADLINE_S", "0"),
        ("FAL_JWKS_URL", "ftp://keys.example/jwks.json"),
    ],
)
def test_unusable_ingress_settings_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({name: value})
    assert caught.value.fields["variable"] == name


def test_fal_keys_default_to_the_documented_set_and_off_turns_the_route_off() -> None:
    assert Settings.from_env({}).fal_jwks_url == FAL_JWKS_URL
    assert Settings.from_env({"FAL_JWKS_URL": "off"}).fal_jwks_url == ""
    assert Settings.from_env({}).max_body_bytes == 1_048_576


@pytest.mark.parametrize(
    "value",
    ["whsec_abc\x01SECRETX", "whsec_abc\nSECRET", "   ", "\t"],
    ids=["control", "newline", "spaces", "tab"],
)
@pytest.mark.parametrize(
    "name", ["STRIPE_WEBHOOK_SECRET", "KLING_WEBHOOK_SECRET", "STRIPE_API_KEY"]
)
def test_a_secret_holding_a_control_character_or_only_blanks_is_refused_by_name(
    name: str, value: str
) -> None:
    """Kind: a secret read more loosely than other text settings. README: a text with a
    control character is refused at start by name; a set but blank secret is a mistake,
    not "off" (unset or empty is off)."""
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({name: value})
    assert refused.value.fields["variable"] == name
    assert "SECRET" not in str(refused.value).replace(name, "")
