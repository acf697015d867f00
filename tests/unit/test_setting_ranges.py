"""Every setting has a documented range or form, and a value outside it is refused with
``ConfigurationError`` naming its variable: never a hang (a retry count of a million), an
overflow (a landing window of 20 digits), a ``RecursionError`` (deeply nested JSON) or a
silently different number (``2.5`` credits read as 2)."""

from __future__ import annotations

import dataclasses
import re
import time

import pytest

import workers.settings as settings_module
from ledger.errors import ConfigurationError
from workers.budgets import Budgets
from workers.settings import VARIABLES, Settings, WholeNumber


def _documented_ranges() -> dict[str, tuple[int, int]]:
    doc = settings_module.__doc__ or ""
    rows = re.findall(r"^\| ``([A-Z_]+)`` \| (\d+) to (\d+) \|$", doc, re.M)
    return {name: (int(low), int(high)) for name, low, high in rows}


WHOLE = {v: parse for v, (_, parse) in VARIABLES.items() if isinstance(parse, WholeNumber)}


def test_the_range_table_is_the_code() -> None:
    assert _documented_ranges() == {v: (p.low, p.high) for v, p in WHOLE.items()}
    assert len(WHOLE) >= 18


@pytest.mark.parametrize("variable", sorted(WHOLE))
def test_every_whole_number_setting_is_refused_outside_its_documented_range_by_name(
    variable: str,
) -> None:
    parse = WHOLE[variable]
    for value in (parse.low - 1, parse.high + 1, "9" * 30, "9" * 5000, "٣", "1e3", "2.5"):
        with pytest.raises(ConfigurationError) as caught:
            Settings.from_env({variable: str(value)})
        assert caught.value.fields["variable"] == variable, value
    for edge in (parse.low, parse.high):  # its range alone: some settings bound others too
        assert parse({variable: f" {edge} "}, variable, None) == edge


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REFUNDRY_PACKS", '{"price_a": 2.5}'),
        ("REFUNDRY_PACKS", '{"price_a": true}'),
        ("REFUNDRY_PACKS", '{"price_a": 10000000000000}'),
        ("REFUNDRY_PACKS", '{"price_a": 1e400}'),
        ("REFUNDRY_PACKS", '{"price_a": NaN}'),
        ("REFUNDRY_PACKS", "[1, 2]"),
        ("REFUNDRY_PACKS", '{"p": ' + "9" * 5000 + "}"),
        ("REFUNDRY_DEADLINES", "[" * 100_000),
        ("REFUNDRY_DEADLINES", "[" * 60_000),
        ("REFUNDRY_DEADLINES", '{"video": [0.5, 600]}'),
        ("REFUNDRY_DEADLINES", '{"video": [true, 600]}'),
        ("REFUNDRY_DEADLINES", '{"video": [0, 600, 9]}'),
        ("UNLANDED_PACK_ACTION", "burn"),
        ("REFUNDRY_FRAUD_ACTION", "nuke"),
        ("REFUNDRY_POLICY_VERSION", "v1\nv2"),
        ("REFUNDRY_HOME", "/tmp/a\nb"),
        ("STRIPE_API_BASE", "https://user:pw@api.stripe.example"),
        ("OPENAI_API_BASE", "https://api.openai.example/v1?key=x"),
        ("KLING_API_BASE", "https://api.kling.example:notaport"),
    ],
)
def test_a_setting_not_of_its_documented_form_is_refused_by_name(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.fields["variable"] == variable


def test_packs_and_deadlines_of_the_documented_form_are_read_as_written() -> None:
    s = Settings.from_env(
        {"REFUNDRY_PACKS": '{"price_a": 100}', "REFUNDRY_DEADLINES": '{"video": [0, 600]}'}
    )
    assert (s.packs_json, s.deadlines_json) == ('{"price_a": 100}', '{"video": [0, 600]}')


def test_the_retry_backoff_budget_is_computed_without_powers_of_two_of_any_size() -> None:
    """A settings object built in code is not range-checked: the budget still takes no time
    (it summed 2**n for every retry: a million retries hung every command)."""
    huge = dataclasses.replace(Settings.from_env({}), max_retries=1_000_000)
    started = time.monotonic()
    worst = Budgets(huge).retry_backoff_worst_ms
    assert time.monotonic() - started < 1
    capped = 300_000 * (1_000_000 - 8)  # 2 s · 2ⁿ reaches the 5 min cap after 8 retries
    assert worst == 1000 * (2 + 4 + 8 + 16 + 32 + 64 + 128 + 256) + capped
