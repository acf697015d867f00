"""Every ``refundry`` option refuses a value outside its documented range or form as a usage
error (exit 2) naming the option, before the command runs: never an overflow traceback, a
port the server quietly changes, a ``nan`` timeout or a ``--since`` that reaches Stripe as a
date before 1970. Run in-process through click's runner: the real command, nothing started."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from workers.cli import main
from workers.cli_options import SINCE

HUGE = "9" * 30


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["sla", "--window", HUGE], "--window"),
        (["sla", "--window", "0"], "--window"),
        (["sweep", "--grace-ms", HUGE], "--grace-ms"),
        (["sweep", "--grace-ms", "-1"], "--grace-ms"),
        (["reconcile", "--dry-run", "--since", "²h"], "--since"),
        (["reconcile", "--dry-run", "--since", "٣h"], "--since"),
        (["reconcile", "--dry-run", "--since", "99999999999999999999999d"], "--since"),
        (["reconcile", "--dry-run", "--since", "9" * 40], "--since"),
        (["reconcile", "--dry-run", "--since", "0000-01-01"], "--since"),
        (["reconcile", "--dry-run", "--since", "9999-12-31"], "--since"),
        (["reconcile", "--dry-run", "--since", "-5h"], "--since"),
        (["web", "--port", "99999"], "--port"),
        (["web", "--port", "-1"], "--port"),
        (["web", "--host", "not a host"], "--host"),
        (["web", "--host", "-bad-.example"], "--host"),
        (["bench", "--ingress", "--concurrency", "0"], "--concurrency"),
        (["bench", "--ingress", "--deliveries", "-5"], "--deliveries"),
        (["demo", "--timeout", "nan"], "--timeout"),
        (["demo", "--timeout", "inf"], "--timeout"),
        (["demo", "--generations", "0"], "--generations"),
        (["worker", "-p", "0"], "--processes"),
        (["worker", "-t", HUGE], "--threads"),
    ],
)
def test_an_option_outside_its_documented_range_is_a_usage_error_naming_it(
    args: list[str], option: str
) -> None:
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 2, done.output
    assert "Invalid value for" in done.output and option in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)


@pytest.mark.parametrize(
    ("text", "age_s"), [("48h", 48 * 3600), ("90m", 5400), ("2d", 172_800), ("30s", 30)]
)
def test_an_age_for_since_is_counted_back_from_now(text: str, age_s: int) -> None:
    since = SINCE.convert(text, None, None)
    assert abs(int(time.time()) - age_s - since) <= 2


def test_since_takes_epoch_seconds_and_iso_dates() -> None:
    assert SINCE.convert("1700000000", None, None) == 1_700_000_000
    assert SINCE.convert("2024-01-02", None, None) == 1_704_153_600
    assert SINCE.convert("2024-01-02T00:00:00+01:00", None, None) == 1_704_150_000
