"""Settings that bound each other: a value each one accepts on its own is refused at start
when, beside another, it would break what that other promises (an inbox that gives up on
an event before the refund promise has run out; an SLA alert that can only come after the
breach). ``ConfigurationError`` names the variable that was set."""

from __future__ import annotations

import re

import pytest

import workers.settings as settings_module
from ledger.errors import ConfigurationError
from workers.settings import RELATIONS, Settings


def _documented_relations() -> set[tuple[str, str, str]]:
    doc = settings_module.__doc__ or ""
    rows = re.findall(r"^\| ``([A-Z_]+)`` \| (<|<=|>|>=) \| ``([A-Z_]+)`` \|$", doc, re.M)
    return set(rows)


def test_the_relation_table_is_the_code() -> None:
    assert _documented_relations() == set(RELATIONS)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"REFUNDRY_INBOX_GIVE_UP_MS": "0"}, "REFUNDRY_INBOX_GIVE_UP_MS"),
        ({"REFUNDRY_INBOX_GIVE_UP_MS": "3599999"}, "REFUNDRY_INBOX_GIVE_UP_MS"),
        ({"REFUNDRY_SLA_WARN_MS": "3600000"}, "REFUNDRY_SLA_WARN_MS"),
        ({"REFUNDRY_SLA_WARN_MS": "7200000"}, "REFUNDRY_SLA_WARN_MS"),
        # the SLA moved below the default warning: the SLA is what was set
        ({"REFUNDRY_REFUND_SLA_MS": "1800000"}, "REFUNDRY_REFUND_SLA_MS"),
        (
            {"REFUNDRY_REFUND_SLA_MS": "600000", "REFUNDRY_SLA_WARN_MS": "600000"},
            "REFUNDRY_SLA_WARN_MS",
        ),
    ],
)
def test_settings_that_contradict_each_other_are_refused_at_start_by_name(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env)
    assert caught.value.fields["variable"] == variable


def test_settings_that_agree_are_read_as_written() -> None:
    s = Settings.from_env(
        {
            "REFUNDRY_REFUND_SLA_MS": "600000",
            "REFUNDRY_SLA_WARN_MS": "599999",
            "REFUNDRY_INBOX_GIVE_UP_MS": "600000",
        }
    )
    assert (s.refund_sla_ms, s.sla_warn_ms, s.inbox_give_up_ms) == (600_000, 599_999, 600_000)
    defaults = Settings.from_env({})
    assert defaults.sla_warn_ms < defaults.refund_sla_ms <= defaults.inbox_give_up_ms
