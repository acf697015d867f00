"""Acceptance tests of the installed ``refundry`` command, run as a real subprocess.

Every test builds its own environment: ``REFUNDRY_HOME`` and the SQLite ``DATABASE_URL`` under
``tmp_path``, ``REDIS_URL`` from the session's real Redis only where a broker is needed.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger import open_ledger
from ledger.queries import migrations
from tests.support.commands import assert_check_ok, clean_env, refundry

# --------------------------------------------------------------------------- helpers


def write_json(path: Path, payload: Any) -> Path:
    path.write_text(json.dumps(payload))
    return path


def only_json_line(stdout: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stdout, got {stdout!r}"
    value = json.loads(lines[0])
    assert isinstance(value, dict)
    return value


def grant(url: str, account: str, credits: int) -> None:
    book = open_ledger(url, policy_version="t")
    try:
        book.grant(account_id=account, credits=credits, idempotency_key=account, reason="test")
    finally:
        book.db.close()


# --------------------------------------------------------------------------- payloads

FAL_OK_VIDEO = {
    "request_id": "fal-req-1",
    "gateway_request_id": "fal-req-1",
    "status": "OK",
    "error": None,
    "payload": {
        "video": {
            "url": "https://v3.fal.media/files/demo/fal-req-1.mp4",
            "content_type": "video/mp4",
        }
    },
}

KLING_FAILED_TASK = {
    "code": 0,
    "message": "SUCCEED",
    "request_id": "req-k1",
    "data": {
        "task_id": "kling-task-1",
        "task_status": "failed",
        "task_status_msg": "Image pixel is invalid",
        "task_info": {},
        "task_result": {},
    },
}

KLING_EMPTY_SUCCESS_LEGACY = {
    "task_id": "kling-task-2",
    "task_status": "succeed",
    "task_status_msg": "",
    "task_result": {"videos": []},
}

KLING_EMPTY_SUCCESS_NEW = {
    "id": "kling-task-3",
    "status": "succeeded",
    "message": "",
    "outputs": [],
}


# --------------------------------------------------------------------------- 1-3 classify


def test_classify_fal_ok_from_file(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    file = write_json(tmp_path / "fal.json", FAL_OK_VIDEO)

    done = refundry(env, "classify", "--provider", "fal", str(file))

    assert done.returncode == 0, done.stderr
    out = only_json_line(done.stdout)
    assert out["outcome"] == "succeeded"
    assert isinstance(out["reason"], str)
    assert out["reason"]
    assert out["provider_job_id"] == "fal-req-1"


def test_classify_fal_ok_from_stdin(tmp_path: Path) -> None:
    env = clean_env(tmp_path)

    done = refundry(env, "classify", "--provider", "fal", "-", stdin=json.dumps(FAL_OK_VIDEO))

    assert done.returncode == 0, done.stderr
    out = only_json_line(done.stdout)
    assert out["outcome"] == "succeeded"
    assert out["reason"]
    assert out["provider_job_id"] == "fal-req-1"


@pytest.mark.parametrize(
    ("payload", "outcome", "job"),
    [
        pytest.param(KLING_FAILED_TASK, "failed", "kling-task-1", id="failed-task"),
        pytest.param(
            KLING_EMPTY_SUCCESS_LEGACY, "empty_success", "kling-task-2", id="empty-legacy"
        ),
        pytest.param(KLING_EMPTY_SUCCESS_NEW, "empty_success", "kling-task-3", id="empty-outputs"),
    ],
)
def test_classify_kling(tmp_path: Path, payload: dict[str, Any], outcome: str, job: str) -> None:
    env = clean_env(tmp_path)
    file = write_json(tmp_path / "kling.json", payload)

    done = refundry(env, "classify", "--provider", "kling", str(file))

    assert done.returncode == 0, done.stderr
    out = only_json_line(done.stdout)
    assert out["outcome"] == outcome
    assert out["reason"]
    assert out["provider_job_id"] == job


def test_classify_unknown_provider(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    file = write_json(tmp_path / "fal.json", FAL_OK_VIDEO)

    done = refundry(env, "classify", "--provider", "no-such-provider", str(file))

    assert done.returncode == 2
    assert done.stdout == ""
    assert "UnknownProvider" in done.stderr
    assert "no-such-provider" in done.stderr


def test_classify_malformed_json(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    file = tmp_path / "broken.json"
    file.write_text('{"status": "OK", ')

    done = refundry(env, "classify", "--provider", "fal", str(file))

    assert done.returncode == 2
    assert done.stdout == ""
    assert "malformed JSON" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("provider", "payload"),
    [
        pytest.param("fal", {"request_id": "r1", "payload": {"video": None}}, id="fal"),
        pytest.param("kling", {"id": "k1", "outputs": []}, id="kling"),
    ],
)
def test_classify_payload_without_status(
    tmp_path: Path, provider: str, payload: dict[str, Any]
) -> None:
    env = clean_env(tmp_path)
    file = write_json(tmp_path / "nostatus.json", payload)

    done = refundry(env, "classify", "--provider", provider, str(file))

    assert done.returncode == 2
    assert done.stdout == ""
    assert "Unclassifiable" in done.stderr
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------- 4 migrate


def test_ledger_migrate_then_up_to_date(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    expected = [name for _, name, _ in migrations("sqlite")]
    assert expected, "the package ships no SQLite migrations"
    assert not (tmp_path / "ledger.sqlite3").exists()

    first = refundry(env, "ledger", "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == expected, (
        f"a fresh ledger should report the migrations applied, got {first.stdout!r}"
    )

    second = refundry(env, "ledger", "migrate")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "up to date"


# --------------------------------------------------------------------------- 5 check


def _assert_check_finds_balance_mismatch(env: dict[str, str], account: str) -> None:
    done = refundry(env, "ledger", "check")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines, "a failing check must list its violations"
    mismatch = [line for line in lines if "invariant 5" in line]
    assert mismatch, f"no invariant 5 violation in {lines!r}"
    assert any(account in line for line in mismatch), mismatch


def _assert_no_ledger(done: subprocess.CompletedProcess[str], location: str) -> None:
    assert (done.returncode, done.stdout) == (3, ""), done.stderr
    assert done.stderr.startswith("refundry: LedgerNotFound: no ledger here")
    assert location in done.stderr and len(done.stderr.splitlines()) == 1


def test_ledger_check_sqlite(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    url = env["DATABASE_URL"]

    _assert_no_ledger(refundry(env, "ledger", "check"), str(tmp_path / "ledger.sqlite3"))
    assert not (tmp_path / "ledger.sqlite3").exists(), "a read-only command created a ledger"
    grant(url, "acct-1", 100)
    assert_check_ok(env)  # a consistent ledger

    with contextlib.closing(sqlite3.connect(tmp_path / "ledger.sqlite3")) as conn, conn:
        conn.execute("UPDATE accounts SET balance = balance + 5 WHERE account_id = 'acct-1'")

    _assert_check_finds_balance_mismatch(env, "acct-1")


@pytest.mark.postgres
def test_ledger_check_postgres(tmp_path: Path, postgres_url: str) -> None:
    env = clean_env(tmp_path, DATABASE_URL=postgres_url)

    _assert_no_ledger(refundry(env, "ledger", "check"), "(schema refundry)")
    assert refundry(env, "ledger", "migrate").returncode == 0
    assert_check_ok(env)  # a fresh ledger
    grant(postgres_url, "acct-pg", 100)
    assert_check_ok(env)

    with psycopg.connect(postgres_url) as conn:
        conn.execute(
            "UPDATE refundry.accounts SET balance = balance + 5 WHERE account_id = 'acct-pg'"
        )

    _assert_check_finds_balance_mismatch(env, "acct-pg")
    assert not (tmp_path / "ledger.sqlite3").exists(), "DATABASE_URL was ignored"


# --------------------------------------------------------------------------- 6 balance


def test_ledger_balance_tells_an_unknown_account_from_a_real_zero(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    grant(env["DATABASE_URL"], "acct-b", 42)
    book = open_ledger(env["DATABASE_URL"], policy_version="t")
    try:
        book.grant(account_id="acct-zero", credits=5, idempotency_key="z", reason="t")
        book.charge(
            generation_id="g", account_id="acct-zero", provider="fal", operation="video", credits=5
        )
    finally:
        book.db.close()

    done = refundry(env, "ledger", "balance", "acct-b")
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "42", "")

    zero = refundry(env, "ledger", "balance", "acct-zero")
    assert (zero.returncode, zero.stdout.strip(), zero.stderr) == (0, "0", "")

    unknown = refundry(env, "ledger", "balance", "nobody")
    assert (unknown.returncode, unknown.stdout.strip()) == (3, "0")
    assert unknown.stderr.startswith("refundry: AccountNotFound:")
    assert "account_id='nobody'" in unknown.stderr and len(unknown.stderr.splitlines()) == 1

    padded = refundry(env, "ledger", "balance", " acct-b")
    assert (padded.returncode, padded.stdout) == (2, "")
    assert padded.stderr.startswith("refundry: InvalidIdentifier: account_id has leading")
