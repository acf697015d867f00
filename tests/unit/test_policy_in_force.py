"""Which version judges: before a file's first version takes effect the shipped default (the
version it inherits from) is in force, and a generation is judged by the version its charge
recorded, by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from handlers.policy_file import read_policy, shipped_policy

FUTURE = """\
[[version]]
name = "from-2027"
effective = 2027-01-01T00:00:00Z
refund_outcomes = ["failed", "empty_success", "cancelled"]
"""
MS_2026_11 = 1_795_996_800_000  # 2026-12-01T00:00:00Z
MS_2027 = 1_798_761_600_000  # 2027-01-01T00:00:00Z


def test_before_the_first_version_takes_effect_the_shipped_default_is_in_force(
    tmp_path: Path,
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(FUTURE, encoding="utf-8")
    book = read_policy(path)
    shipped = shipped_policy().versions[-1]
    assert book.at(MS_2026_11).name == shipped.name
    assert book.at(MS_2027 - 1).name == shipped.name
    assert book.at(MS_2027).name == "from-2027"


def test_policy_show_at_a_moment_before_the_first_version_shows_the_shipped_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import runtime
    from workers.cli import main

    path = tmp_path / "policy.toml"
    path.write_text(FUTURE, encoding="utf-8")
    monkeypatch.setenv("REFUNDRY_POLICY", str(path))
    runtime.reset()
    shipped = shipped_policy().versions[-1].name
    result = CliRunner().invoke(main, ["policy", "show", "--at", "2026-12-01"], env=os.environ)
    assert result.exit_code == 0, result.output
    assert f"in force at 2026-12-01T00:00:00Z: {shipped} " in result.output
    later = CliRunner().invoke(main, ["policy", "show", "--at", "2027-01-01"], env=os.environ)
    assert "in force at 2027-01-01T00:00:00Z: from-2027 " in later.output


BACK_DATED = """\
[[version]]
name = "v1"
effective = 2026-01-01T00:00:00Z

[[version]]
name = "v2"
effective = 2026-06-01T00:00:00Z

[[version]]
name = "v3"
effective = 2026-03-01T00:00:00Z
"""


def test_policy_check_warns_of_a_version_taking_effect_before_one_written_above_it(
    tmp_path: Path,
) -> None:
    from workers.cli import main

    path = tmp_path / "policy.toml"
    path.write_text(BACK_DATED, encoding="utf-8")
    result = CliRunner().invoke(main, ["policy", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: version 'v3' takes effect no later than 'v2'" in result.stderr
    assert "keep the version their charge recorded" in result.stderr
    in_order = tmp_path / "ordered.toml"
    in_order.write_text(BACK_DATED.replace("2026-03-01", "2026-09-01"), encoding="utf-8")
    assert "warning" not in CliRunner().invoke(main, ["policy", "check", str(in_order)]).stderr


def test_a_fifo_or_a_device_as_the_policy_path_is_refused_at_once(tmp_path: Path) -> None:
    from ledger.errors import PolicyError

    fifo = tmp_path / "policy.toml"
    os.mkfifo(fifo)  # no writer: reading it would block for ever
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(PolicyError) as refused:
            read_policy(path)
        assert "not a regular file" in str(refused.value), refused.value
        assert refused.value.fields["file"] == str(path)


@pytest.mark.parametrize("key", ["klingx:video", "nosuchprov:nosuchop", "video ", "Video"])
def test_a_deadlines_key_refundry_does_not_know_is_refused_at_its_line(
    tmp_path: Path, key: str
) -> None:
    from ledger.errors import PolicyError

    path = tmp_path / "policy.toml"
    path.write_text(
        f'[[version]]\nname = "a"\neffective = 2026-01-01T00:00:00Z\n\n'
        f'[version.deadlines]\nvideo = [600, 2700]\n"{key}" = [60, 600]\n',
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as refused:
        read_policy(path)
    assert "not an operation or provider:operation Refundry knows" in str(refused.value)
    assert refused.value.fields["key"] == f"version[1].deadlines.{key}"
    assert refused.value.fields["line"] == 7


def test_a_promise_the_settings_cannot_keep_is_refused_at_its_file_key_and_line(
    tmp_path: Path,
) -> None:
    from ledger.errors import PolicyError
    from workers.policy_settings import check_budgets
    from workers.settings import Settings

    path = tmp_path / "policy.toml"
    path.write_text(
        '[[version]]\nname = "a"\neffective = 2026-01-01T00:00:00Z\nrefund_sla_ms = 1\n',
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as refused:
        check_budgets(Settings.from_env({}), read_policy(path))
    fields = refused.value.fields
    assert (fields["file"], fields["line"]) == (str(path), 4)
    assert fields["key"] == "version[1].refund_sla_ms"
    assert fields["refund_sla_ms"] == 1 and "promise_s" not in fields


def test_a_policy_variable_of_blanks_only_is_refused() -> None:
    from ledger.errors import ConfigurationError
    from workers.settings import Settings

    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"REFUNDRY_POLICY": "  "})
    assert refused.value.fields == {"variable": "REFUNDRY_POLICY"}
    assert Settings.from_env({"REFUNDRY_POLICY": ""}).policy_file == ""


def test_output_to_a_reader_that_went_away_exits_quietly(tmp_path: Path) -> None:
    import subprocess

    from tests.support.commands import REFUNDRY, clean_env

    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head` does once it has what it wants
    done = subprocess.run(
        [str(REFUNDRY), "policy", "show"],
        env=clean_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )
    os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(b"\xef\xbb\xbf" + FUTURE.encode())
    assert read_policy(path).versions[-1].name == "from-2027"


def test_two_versions_a_fraction_of_a_millisecond_apart_are_refused_saying_why() -> None:
    from handlers.policy_file import parse_policy
    from ledger.errors import PolicyError

    text = (
        '[[version]]\nname = "a"\neffective = 2026-01-01T00:00:00Z\n'
        '[[version]]\nname = "b"\neffective = 2026-01-01T00:00:00.0001Z\n'
    )
    with pytest.raises(PolicyError) as refused:
        parse_policy(text, source="p.toml", base=shipped_policy().versions[-1].rules)
    assert "kept to the millisecond" in str(refused.value)


def test_an_empty_list_of_refunded_outcomes_refunds_nothing(tmp_path: Path) -> None:
    from ledger.outcomes import Outcome

    path = tmp_path / "policy.toml"
    path.write_text(FUTURE.replace('["failed", "empty_success", "cancelled"]', "[]"))
    rules = read_policy(path).versions[-1].rules
    assert rules.refund_outcomes == frozenset()
    assert not rules.refunds("fal", "video", Outcome.FAILED)


def test_a_request_just_past_the_window_does_not_read_as_the_limit() -> None:
    from decimal import Decimal

    from handlers.manual_refunds import DAY_MS, ManualRefundRules, _window

    rules = ManualRefundRules(7, Decimal("0.2"))
    ok, why = _window(0, 7 * DAY_MS + 1, rules)
    assert not ok and why.startswith("asked 7 days + 1 ms after payment: outside")
    ok, why = _window(0, 7 * DAY_MS - 1, rules)
    assert ok and why.startswith("asked 7 days - 1 ms after payment: within")
    assert _window(0, 7 * DAY_MS, rules)[1].startswith("asked 7.00 days after payment: within")
