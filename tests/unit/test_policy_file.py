"""The refund policy file: versions ordered by their effective time, each inheriting what it
leaves out, and every malformed file refused naming the key and its line."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from handlers.policy_file import parse_policy, read_policy, shipped_policy
from handlers.policy_rules import PolicyBook
from ledger.errors import ConfigurationError, PolicyError
from ledger.outcomes import Outcome
from tests.support.policy_files import JAN_MS as JAN
from tests.support.policy_files import MAR_MS as MAR
from tests.support.policy_files import TWO_VERSIONS
from workers import exit_codes
from workers.policy_settings import load_policy, settings_under
from workers.settings import Settings


def _book(text: str) -> PolicyBook:
    return parse_policy(text, source="policy.toml", base=shipped_policy().versions[-1].rules)


def _refusal(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        _book(text)
    return caught.value


def test_the_shipped_policy_holds_todays_defaults_of_the_settings() -> None:
    defaults = Settings.from_env({})
    (version,) = shipped_policy().versions
    assert settings_under(defaults, version) == defaults


def test_a_later_version_states_only_what_changed_and_inherits_the_rest() -> None:
    book = parse_policy(
        TWO_VERSIONS, source="policy.toml", base=shipped_policy().versions[-1].rules
    )
    jan, mar = book.versions
    assert (jan.name, jan.effective_ms, mar.effective_ms) == ("2026-01", JAN, MAR)
    assert mar.rules.refund_outcomes == {Outcome.FAILED, Outcome.EMPTY_SUCCESS}
    assert mar.rules.landing_window_s == 3600  # inherited through 2026-01
    assert jan.rules.unlanded_pack_action == "refund"
    assert jan.rules.refund_sla_ms == 3_600_000  # inherited from the shipped default
    assert dict(mar.rules.packs) == {"price_small": 100, "price_large": 1000}  # key by key
    assert dict(jan.rules.packs) == {"price_small": 100}


def test_the_version_in_force_is_the_latest_effective_at_or_before_the_moment() -> None:
    book = parse_policy(
        TWO_VERSIONS, source="policy.toml", base=shipped_policy().versions[-1].rules
    )
    assert book.at(MAR - 1).name == "2026-01"
    assert book.at(MAR).name == "2026-03"
    assert book.at(JAN - 86_400_000).name == "2026-01"  # before the first: the first


def test_versions_are_ordered_by_effective_time_not_by_their_place_in_the_file() -> None:
    later_first = TWO_VERSIONS.split("[[version]]")
    text = "[[version]]" + later_first[2] + "[[version]]" + later_first[1]
    book = parse_policy(text, source="p", base=shipped_policy().versions[-1].rules)
    assert [v.name for v in book.versions] == ["2026-01", "2026-03"]
    assert book.versions[-1].rules.packs["price_small"] == 100  # from 2026-01, before it


def test_per_operation_overrides_of_refunded_outcomes_win_over_the_versions_list() -> None:
    book = _book(
        '[[version]]\nname = "a"\neffective = 2026-01-01T00:00:00Z\n'
        '[version.outcomes]\n"kling:video" = ["failed"]\ntraining = []\n'
    )
    rules = book.versions[0].rules
    assert rules.refunds("kling", "video", Outcome.FAILED)
    assert not rules.refunds("kling", "video", Outcome.MODERATED)
    assert rules.refunds("fal", "video", Outcome.MODERATED)
    assert not rules.refunds("replicate", "training", Outcome.FAILED)


HEAD = '[[version]]\nname = "a"\neffective = 2026-01-01T00:00:00Z\n'


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        (HEAD + "refund_outcome = []\n", "version[1].refund_outcome", 4),
        (HEAD + 'refund_outcomes = ["succeeded"]\n', "version[1].refund_outcomes", 4),
        (HEAD + 'refund_outcomes = ["failed", "failed"]\n', "version[1].refund_outcomes", 4),
        (HEAD + "landing_window_s = -1\n", "version[1].landing_window_s", 4),
        (HEAD + "refund_sla_ms = 1.5\n", "version[1].refund_sla_ms", 4),
        (HEAD + 'unlanded_pack_action = "maybe"\n', "version[1].unlanded_pack_action", 4),
        (HEAD + 'fraud_action = "ignore"\n', "version[1].fraud_action", 4),
        (HEAD + "\n[version.deadlines]\nvideo = [900, 600]\n", "version[1].deadlines.video", 6),
        (HEAD + "\n[version.packs]\nprice_a = 2.5\n", "version[1].packs.price_a", 6),
        (HEAD + '\n[version.outcomes]\n"kling:dance" = []\n', "version[1].outcomes.kling:dance", 6),
        (HEAD + '\n[version.outcomes]\n"acme:video" = []\n', "version[1].outcomes.acme:video", 6),
        (HEAD + "\n[version.bonus]\nx = 1\n", "version[1].bonus", 5),
        ('[[version]]\nname = "a b"\neffective = 2026-01-01T00:00:00Z\n', "version[1].name", 2),
        ('[[version]]\nname = "a"\neffective = 2026-01-01T00:00:00\n', "version[1].effective", 3),
        ('[[version]]\nname = "a"\neffective = "2026-01-01"\n', "version[1].effective", 3),
        ("title = 'x'\n" + HEAD, "title", 1),
    ],
)
def test_a_bad_key_or_value_is_refused_naming_the_key_and_its_line(
    text: str, key: str, line: int
) -> None:
    refused = _refusal(text)
    assert (refused.fields["key"], refused.fields["line"]) == (key, line)
    assert refused.fields["file"] == "policy.toml"


def test_two_versions_with_one_name_are_refused_at_the_second_name() -> None:
    text = HEAD + '\n[[version]]\nname = "a"\neffective = 2026-02-01T00:00:00Z\n'
    refused = _refusal(text)
    assert (refused.fields["key"], refused.fields["line"]) == ("version[2].name", 6)
    assert "version[1]" in str(refused)


def test_two_versions_with_one_effective_time_are_refused_whatever_the_offset() -> None:
    text = HEAD + '\n[[version]]\nname = "b"\neffective = 2026-01-01T01:00:00+01:00\n'
    refused = _refusal(text)
    assert (refused.fields["key"], refused.fields["line"]) == ("version[2].effective", 7)


def test_a_file_that_is_not_toml_is_refused_at_its_line() -> None:
    refused = _refusal(HEAD + "refund_sla_ms = \n")
    assert refused.fields["line"] == 4
    assert str(refused).startswith("not TOML")


def test_a_file_without_versions_is_refused() -> None:
    assert _refusal("").fields["key"] == "version"


def test_a_policy_error_is_a_configuration_error_and_exits_4() -> None:
    refused = _refusal(HEAD + "nope = 1\n")
    assert isinstance(refused, ConfigurationError)
    assert exit_codes.exit_code(refused) == exit_codes.CONFIGURATION == 4


def test_a_missing_or_undecodable_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as missing:
        read_policy(tmp_path / "absent.toml")
    assert missing.value.fields["file"].endswith("absent.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(HEAD.encode() + b"# caf\xe9\n")
    with pytest.raises(PolicyError) as undecodable:
        read_policy(bad)
    assert undecodable.value.fields["line"] == 4


def _env_book(tmp_path: Path, **env: str) -> PolicyBook:
    path = tmp_path / "policy.toml"
    path.write_text(TWO_VERSIONS)
    full = {"REFUNDRY_POLICY": str(path), **env}
    return load_policy(full, Settings.from_env(full), at_ms=MAR + 1)


def test_an_environment_variable_overrides_the_version_in_force_only(tmp_path: Path) -> None:
    book = _env_book(tmp_path, REFUNDRY_LANDING_WINDOW_S="60", REFUNDRY_REFUND_CANCELLED="true")
    _shipped, jan, mar = book.versions  # the shipped default is in force before 2026-01
    assert mar.rules.landing_window_s == 60
    assert Outcome.CANCELLED in mar.rules.refund_outcomes
    assert mar.overridden == ("REFUNDRY_REFUND_CANCELLED", "REFUNDRY_LANDING_WINDOW_S")
    assert jan.rules.landing_window_s == 3600  # the past keeps its file's rules
    assert jan.overridden == ()


def test_the_packs_variable_replaces_the_catalog_of_the_version_in_force(tmp_path: Path) -> None:
    book = _env_book(tmp_path, REFUNDRY_PACKS='{"price_env": 7}')
    assert dict(book.versions[-1].rules.packs) == {"price_env": 7}


def test_the_settings_follow_the_version_in_force(tmp_path: Path) -> None:
    book = _env_book(tmp_path)
    under = settings_under(Settings.from_env({}), book.versions[-1])
    assert (under.policy_version, under.unlanded_action) == ("2026-03", "complete")
    assert under.refund_cancelled is False


def test_a_version_name_variable_beside_a_policy_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _env_book(tmp_path, REFUNDRY_POLICY_VERSION="mine")
    assert caught.value.fields["variable"] == "REFUNDRY_POLICY_VERSION"


def test_without_a_policy_file_the_version_name_variable_names_the_shipped_version() -> None:
    env = {"REFUNDRY_POLICY_VERSION": "platform-7"}
    book = load_policy(env, Settings.from_env(env))
    assert [v.name for v in book.versions] == ["platform-7"]


def test_every_rule_field_is_in_the_json_shown() -> None:
    (version,) = shipped_policy().versions
    shown = version.rules.as_json()
    assert set(shown) == {f.name for f in fields(version.rules)}
