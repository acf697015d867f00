"""``refundry policy show`` and ``refundry policy check``, and a bad policy file stopping
every command, the worker first, with one line naming the key and its line (exit 4)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from handlers.policy_file import shipped_policy
from tests.support.commands import clean_env, refundry
from tests.support.policy_files import TWO_VERSIONS

BAD = """\
[[version]]
name = "2026-01"
effective = 2026-01-01T00:00:00Z
landing_window_s = "an hour"
"""


def _file(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _refused(done: subprocess.CompletedProcess[str]) -> str:
    assert (done.returncode, done.stdout) == (4, ""), done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("refundry: PolicyError: "), line
    return line


def test_a_bad_policy_never_starts_a_worker(tmp_path: Path) -> None:
    env = clean_env(tmp_path, REFUNDRY_POLICY=str(_file(tmp_path, BAD)))
    line = _refused(refundry(env, "worker", "--processes", "1", "--threads", "1"))
    assert "key='version[1].landing_window_s'" in line and "line=4" in line
    assert not (tmp_path / "ledger.sqlite3").exists()  # refused before anything was opened


@pytest.mark.parametrize(
    "command", [("scheduler",), ("web", "--port", "8999"), ("sweep",), ("reconcile",)]
)
def test_a_bad_policy_never_starts_the_scheduler_the_web_or_a_sweep(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = clean_env(tmp_path, REFUNDRY_POLICY=str(_file(tmp_path, BAD)))
    line = _refused(refundry(env, *command))
    assert "key='version[1].landing_window_s'" in line and "line=4" in line
    assert not (tmp_path / "ledger.sqlite3").exists()


def test_policy_check_lists_the_versions_of_a_good_file(tmp_path: Path) -> None:
    done = refundry(clean_env(tmp_path), "policy", "check", str(_file(tmp_path, TWO_VERSIONS)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "ok: 2 version(s)",
        f"  1970-01-01T00:00:00Z  {shipped_policy().versions[-1].name}"
        "  (shipped default, in force before)",
        "  2026-01-01T00:00:00Z  2026-01",
        "  2026-03-01T00:00:00Z  2026-03",
    ]


def test_policy_check_names_the_key_and_line_of_a_bad_file(tmp_path: Path) -> None:
    text = TWO_VERSIONS + '\n[[version]]\nname = "2026-01"\neffective = 2026-06-01T00:00:00Z\n'
    line = _refused(refundry(clean_env(tmp_path), "policy", "check", str(_file(tmp_path, text))))
    assert "key='version[3].name'" in line and "line=20" in line


def test_policy_check_refuses_a_version_whose_deadlines_break_the_promise(tmp_path: Path) -> None:
    later = '\n[[version]]\nname = "2026-06"\neffective = 2026-06-01T00:00:00Z\n'
    text = TWO_VERSIONS + later + "refund_sla_ms = 600000\n"  # shorter than the deadlines
    done = refundry(clean_env(tmp_path), "policy", "check", str(_file(tmp_path, text)))
    assert done.returncode == 4
    assert "policy_version='2026-06'" in done.stderr and "refund_sla_ms=600000" in done.stderr
    assert "key='version[3].refund_sla_ms'" in done.stderr and "line=22" in done.stderr


def test_policy_show_picks_the_version_in_force_at_the_date(tmp_path: Path) -> None:
    env = clean_env(tmp_path, REFUNDRY_POLICY=str(_file(tmp_path, TWO_VERSIONS)))
    february = refundry(env, "policy", "show", "--at", "2026-02-15", "--json")
    assert february.returncode == 0, february.stderr
    shown = json.loads(february.stdout)
    assert shown["version"]["name"] == "2026-01"
    assert shown["version"]["rules"]["unlanded_pack_action"] == "refund"
    assert shown["version"]["rules"]["refund_outcomes"] == [
        "cancelled",
        "empty_success",
        "failed",
        "moderated",
    ]
    march = json.loads(refundry(env, "policy", "show", "--at", "2026-03-01", "--json").stdout)
    assert march["version"]["name"] == "2026-03"
    assert march["version"]["rules"]["refund_outcomes"] == ["empty_success", "failed"]
    assert march["version"]["rules"]["packs"] == {"price_large": 1000, "price_small": 100}


def test_policy_show_says_which_variables_override_the_version_in_force(tmp_path: Path) -> None:
    env = clean_env(
        tmp_path,
        REFUNDRY_POLICY=str(_file(tmp_path, TWO_VERSIONS)),
        UNLANDED_PACK_ACTION="refund",
    )
    done = refundry(env, "policy", "show")
    assert done.returncode == 0, done.stderr
    assert "in force at" in done.stdout and ": 2026-03 (effective 2026-03-01T00:00:00Z)" in (
        done.stdout
    )
    assert "overridden by: UNLANDED_PACK_ACTION" in done.stdout
    assert '  unlanded_pack_action = "refund"' in done.stdout


def test_without_a_policy_file_the_shipped_default_is_shown(tmp_path: Path) -> None:
    done = refundry(clean_env(tmp_path), "policy", "show")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("policy: shipped default\n")
    assert ": 2026-11-23 (effective 1970-01-01T00:00:00Z)" in done.stdout
