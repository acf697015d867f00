"""``REFUNDRY_OPS_TOKEN``: unset turns the ops page off; a short or spaced token is refused by
name (never echoed); only the token itself is accepted."""

from __future__ import annotations

import pytest

from ledger.errors import ConfigurationError
from workers.ops_auth import session_key, token_ok
from workers.settings import Settings

TOKEN = "a" * 12 + "B" * 12 + "0123456789"


def test_unset_means_no_token() -> None:
    assert Settings.from_env({}).ops_token == ""
    assert not token_ok("", "")


@pytest.mark.parametrize("value", ["short-token", "x" * 23, "spaces in the token here!!", "é" * 30])
def test_a_weak_or_unprintable_token_is_refused_by_name(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"REFUNDRY_OPS_TOKEN": value})
    assert caught.value.fields["variable"] == "REFUNDRY_OPS_TOKEN"
    assert value not in str(caught.value)


def test_only_the_token_is_accepted_and_the_session_key_is_not_the_token() -> None:
    assert Settings.from_env({"REFUNDRY_OPS_TOKEN": TOKEN}).ops_token == TOKEN
    assert TOKEN not in repr(Settings.from_env({"REFUNDRY_OPS_TOKEN": TOKEN}))
    assert token_ok(TOKEN, TOKEN)
    for other in ("", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "\udcff" + TOKEN):
        assert not token_ok(other, TOKEN), other
    assert TOKEN not in session_key(TOKEN)
    assert session_key(TOKEN) != session_key(TOKEN + "x")
