"""``REFUNDRY_API_KEYS``: several keys at once for a rotation, each long enough, never
repeated in an error; a request's bearer key is matched to its scope (its digest)."""

from __future__ import annotations

import hashlib

import pytest

from ledger.errors import ConfigurationError
from workers.api_keys import ApiKeys, api_keys_setting
from workers.settings import Settings

OLD = "old-key-0123456789abcdef0123"
NEW = "new-key-fedcba9876543210fedc"


def _read(value: str) -> str:
    return api_keys_setting({"REFUNDRY_API_KEYS": value}, "REFUNDRY_API_KEYS", "")


def test_both_keys_of_a_rotation_are_accepted_each_with_its_own_scope() -> None:
    keys = ApiKeys(_read(f" {OLD} , {NEW} "))
    old, new = keys.scope(f"Bearer {OLD}"), keys.scope(f"bearer {NEW}")
    assert old == hashlib.sha256(OLD.encode()).hexdigest()
    assert new == hashlib.sha256(NEW.encode()).hexdigest()
    assert old != new


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        OLD,
        f"Basic {OLD}",
        f"Bearer {OLD}x",
        f"Bearer {OLD[:-1]}",
        "Bearer ",
        f"Bearer  {OLD} x",
    ],
)
def test_anything_but_bearer_and_a_configured_key_has_no_scope(header: str | None) -> None:
    assert ApiKeys(_read(OLD)).scope(header) is None


def test_no_keys_means_the_api_is_off() -> None:
    assert not ApiKeys(_read(""))
    assert ApiKeys(_read("")).scope(f"Bearer {OLD}") is None


@pytest.mark.parametrize(
    "value", ["short-key", f"{OLD},", f"{OLD},,{NEW}", "   ", f"{OLD} {NEW}", f"{OLD}\u00e9xyz"]
)
def test_an_unusable_list_is_refused_by_name_without_repeating_a_key(value: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"REFUNDRY_API_KEYS": value})
    assert refused.value.fields["variable"] == "REFUNDRY_API_KEYS"
    assert OLD not in str(refused.value) and "short-key" not in str(refused.value)


def test_settings_keep_the_keys_out_of_their_repr() -> None:
    settings = Settings.from_env({"REFUNDRY_API_KEYS": f"{OLD},{NEW}"})
    assert settings.api_keys == f"{OLD},{NEW}"
    assert OLD not in repr(settings)
