"""The ``refundry`` command refuses bad input and bad settings the way an on-call engineer
needs: one line on stderr naming what was wrong (never a password), an exit code per kind
(2 refused, 3 not found, 4 configuration, 5 unavailable), no traceback, nothing created."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from ledger import open_ledger
from ledger.queries import migrations
from providers.base import OPERATIONS
from providers.registry import PROVIDER_NAMES
from tests.support.commands import RefundryProcess, clean_env, refundry
from tests.support.servers import LOOPBACK, RedisServer, free_port
from tests.support.waiting import wait_until


def _one_line(done: subprocess.CompletedProcess[str], code: int, error: str) -> str:
    """The single stderr line of a refusal, after checking its shape."""
    assert (done.returncode, done.stdout) == (code, ""), done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"refundry: {error}: "), line
    return line


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- classify


def test_classify_refuses_an_unknown_operation_listing_the_valid_ones(tmp_path: Path) -> None:
    file = _write(tmp_path / "p.json", json.dumps({"request_id": "r", "status": "OK"}))
    env = clean_env(tmp_path)
    done = refundry(env, "classify", "--provider", "fal", "--operation", "nope", str(file))
    line = _one_line(done, 2, "UnknownOperation")
    assert "operation='nope'" in line
    assert all(operation in line for operation in OPERATIONS)


def test_classify_refuses_an_unknown_provider_listing_the_known_ones(tmp_path: Path) -> None:
    file = _write(tmp_path / "p.json", "{}")
    done = refundry(clean_env(tmp_path), "classify", "--provider", "nope", str(file))
    line = _one_line(done, 2, "UnknownProvider")
    assert f"valid='{', '.join(PROVIDER_NAMES)}'" in line


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"request_id": "r", "status": NaN}', "NaN is not JSON"),
        ('{"status": "OK", "progress": Infinity}', "Infinity is not JSON"),
        ('{"a": ' * 600 + "1" + "}" * 600, "nested too deeply"),
    ],
    ids=["nan", "infinity", "600-levels"],
)
def test_classify_refuses_what_is_not_strict_json(tmp_path: Path, text: str, problem: str) -> None:
    file = _write(tmp_path / "p.json", text)
    done = refundry(clean_env(tmp_path), "classify", "--provider", "fal", str(file))
    line = _one_line(done, 2, "InvalidPayload")
    assert problem in line


UNDECODABLE: list[tuple[str, bytes, str]] = [
    ("latin-1", b'{"status": "OK", "note": "caf\xe9"}', "not UTF-8"),
    ("utf-16", '{"status": "OK"}'.encode("utf-16-le"), "not UTF-8"),
    ("5000-digit-number", b'{"code": ' + b"9" * 5000 + b', "status": "OK"}', "digits"),
    ("5000-digit-number-deep", b'{"payload": {"seed": -' + b"1" * 5000 + b"}}", "digits"),
    ("lone-surrogate", b'{"request_id": "\\ud800", "status": "OK"}', "surrogate"),
    ("lone-surrogate-key", b'{"\\udfff": 1, "status": "OK"}', "surrogate"),
    ("100000-levels", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("50000-objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "nested too deeply"),
]


@pytest.mark.parametrize(
    ("raw", "problem"), [c[1:] for c in UNDECODABLE], ids=[c[0] for c in UNDECODABLE]
)
def test_json_doors_refuse_undecodable_input_in_one_line(
    tmp_path: Path, raw: bytes, problem: str
) -> None:
    """Non-UTF-8 text, numbers past Python's conversion limit, lone surrogates and nesting
    past the recursion limit: a one-line ``InvalidPayload`` and exit 2, never a traceback."""
    file = tmp_path / "p.json"
    file.write_bytes(raw)
    done = refundry(clean_env(tmp_path), "classify", "--provider", "fal", str(file))
    line = _one_line(done, 2, "InvalidPayload")
    assert problem in line
    assert len(line) < 300, line


def test_text_that_is_not_valid_utf8_is_refused_in_one_line_not_a_traceback(
    tmp_path: Path,
) -> None:
    """A lone surrogate, as a JSON escape or as its raw bytes in a file, or bytes that are not
    UTF-8 in an argument (Python hands them over as lone surrogates)."""
    env = clean_env(tmp_path)
    escaped = _write(tmp_path / "escaped.json", '{"request_id": "r", "status": "\\ud800"}')
    raw = tmp_path / "raw.json"
    raw.write_bytes(b'{"request_id": "r", "status": "\xed\xa0\x80"}')
    for file in (escaped, raw):
        line = _one_line(
            refundry(env, "classify", "--provider", "fal", str(file)), 2, "InvalidPayload"
        )
        assert "surrogate" in line or "not UTF-8" in line, line
    assert refundry(env, "ledger", "migrate").returncode == 0
    not_utf8 = "acct-\udcff"  # the argument's bytes: b"acct-\xff"
    for command in (["ledger", "balance", not_utf8], ["dlq", "show", not_utf8]):
        line = _one_line(refundry(env, *command), 2, "InvalidIdentifier")
        assert "value='acct-\\\\udcff'" in line, line


# --------------------------------------------------------------------------- settings


def test_an_unreachable_database_is_one_line_within_seconds_without_its_password(
    tmp_path: Path,
) -> None:
    url = f"postgresql://nobody:s3cret-pw@{LOOPBACK}:{free_port()}/x"
    env = clean_env(tmp_path, DATABASE_URL=url)
    for command in (["ledger", "balance", "a"], ["ledger", "check"], ["sla"], ["status"]):
        started = time.monotonic()
        done = refundry(env, *command, timeout=30)
        assert time.monotonic() - started < 10, command
        line = _one_line(done, 5, "LedgerUnavailable")
        assert url.rsplit("@", 1)[1] in line and "nobody@" in line, line
        assert "s3cret-pw" not in line


def test_an_unsupported_database_scheme_names_the_supported_ones(tmp_path: Path) -> None:
    done = refundry(clean_env(tmp_path, DATABASE_URL="mysql://x/y"), "ledger", "check")
    line = _one_line(done, 4, "ConfigurationError")
    assert "scheme='mysql'" in line
    assert "postgresql://" in line and "sqlite:///" in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", " "),
        ("DATABASE_URL", "postgres-prod.internal"),
        ("BROKER_URL", " "),
        ("BROKER_URL", "amqp://u:QAPW@127.0.0.1:1/v?heartbeat=abc"),
        ("BROKER_URL", "amqp://u:QAPW@127.0.0.1:1/v?foo=1"),
        ("BROKER_URL", "amqp://u:QAPW@127.0.0.1:1/a/b"),
    ],
)
def test_a_blank_or_host_only_server_url_is_refused_and_no_private_ledger_is_made(
    tmp_path: Path, variable: str, value: str
) -> None:
    folder = tmp_path / "host"
    folder.mkdir()
    env = clean_env(tmp_path) | {variable: value}
    done = refundry(env, "ledger", "migrate", cwd=folder)
    line = _one_line(done, 4, "ConfigurationError")
    assert f"variable='{variable}'" in line and "QAPW" not in line
    assert list(folder.iterdir()) == [], "a SQLite file was made of the value"


def test_a_setting_that_cannot_be_used_is_one_line(tmp_path: Path) -> None:
    done = refundry(clean_env(tmp_path, KLING_ACCESS_KEY="ak-only"), "ledger", "check")
    line = _one_line(done, 4, "ConfigurationError")
    assert "variable='KLING_SECRET_KEY'" in line


# --------------------------------------------------------------------------- where the ledger is


def _outside_any_project(tmp_path: Path) -> dict[str, str]:
    """A shell in a folder of its own: no DATABASE_URL, no REFUNDRY_HOME."""
    env = clean_env(tmp_path)
    del env["DATABASE_URL"], env["REFUNDRY_HOME"]
    return env


def test_read_only_commands_run_elsewhere_create_no_ledger_and_say_where_they_looked(
    tmp_path: Path,
) -> None:
    env = _outside_any_project(tmp_path)
    expected = str(tmp_path / ".refundry" / "ledger.sqlite3")
    for command in (
        ["ledger", "balance", "acct"],
        ["ledger", "check"],
        ["dlq", "list"],
        ["dlq", "show", "m1"],
        ["sla"],
    ):
        line = _one_line(refundry(env, *command, cwd=tmp_path), 3, "LedgerNotFound")
        assert f"location='{expected}'" in line, command
    assert not (tmp_path / ".refundry").exists(), "a read-only command created a ledger"


def test_one_shot_commands_that_would_act_on_a_ledger_create_nothing_in_a_fresh_folder(
    tmp_path: Path,
) -> None:
    """``sweep`` and ``reconcile`` (a dry run above all) run in the wrong folder: they say
    where they looked, and no ledger, home folder or embedded Redis comes into being."""
    env = _outside_any_project(tmp_path)
    expected = str(tmp_path / ".refundry" / "ledger.sqlite3")
    keyed = env | {"STRIPE_API_KEY": "sk_test_fresh_folder_0123456789"}
    for command, environment in (
        (["sweep"], env),
        (["sweep", "--grace-ms", "0"], env),
        (["reconcile", "--dry-run"], keyed),
        (["reconcile"], keyed),
    ):
        line = _one_line(refundry(environment, *command, cwd=tmp_path), 3, "LedgerNotFound")
        assert f"location='{expected}'" in line, command
    line = _one_line(refundry(env, "reconcile", "--dry-run", cwd=tmp_path), 4, "ConfigurationError")
    assert "STRIPE_API_KEY" in line
    assert not (tmp_path / ".refundry").exists(), "a command created a ledger or a Redis"


def test_status_and_help_show_where_the_ledger_is(tmp_path: Path) -> None:
    env = _outside_any_project(tmp_path)
    expected = str(tmp_path / ".refundry" / "ledger.sqlite3")
    help_text = refundry(env, "--help", cwd=tmp_path)
    assert help_text.returncode == 0
    assert f"  {expected}\n" in help_text.stdout

    none = refundry(env, "status", cwd=tmp_path)
    assert none.returncode == 3
    assert json.loads(none.stdout) | {"broker": None} == {
        "home": str(tmp_path / ".refundry"),
        "ledger": expected,
        "ledger_exists": False,
        "broker": None,
    }
    assert not (tmp_path / ".refundry").exists()

    assert refundry(env, "ledger", "migrate", cwd=tmp_path).returncode == 0
    there = refundry(env, "status", cwd=tmp_path)
    assert there.returncode == 0, there.stderr
    found = json.loads(there.stdout)
    latest = max(version for version, _, _ in migrations("sqlite"))
    assert (found["ledger"], found["ledger_exists"], found["schema_version"]) == (
        expected,
        True,
        latest,
    )


# --------------------------------------------------------------------------- whole credits


def test_ledger_check_proves_every_balance_and_entry_is_a_whole_number(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    book = open_ledger(env["DATABASE_URL"], policy_version="t")
    try:
        book.grant(account_id="acct", credits=500, idempotency_key="k", reason="t")
    finally:
        book.db.close()
    db = tmp_path / "ledger.sqlite3"
    with (
        contextlib.closing(sqlite3.connect(db)) as conn,
        pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"),
    ):
        conn.execute("UPDATE accounts SET balance = 497.5")
    # Written past the constraint, as a tool that disables it would: the audit still sees it.
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("UPDATE accounts SET balance = 497.5")
        conn.execute("UPDATE entries SET amount = 497.5")
    done = refundry(env, "ledger", "check")
    assert done.returncode == 1
    assert sorted(line for line in done.stdout.splitlines() if "invariant 6" in line) == [
        "invariant 6 fractional_credits: table=accounts id=acct value=497.5",
        "invariant 6 fractional_credits: table=entries id=grant:k value=497.5",
    ]


# --------------------------------------------------------------------------- the worker


def _worker(tmp_path: Path, redis_url: str) -> RefundryProcess:
    env = clean_env(tmp_path, REDIS_URL=redis_url)
    assert refundry(env, "ledger", "migrate").returncode == 0
    return RefundryProcess(env, tmp_path / "worker.log", "worker", "-p", "1", "-t", "1")


def _log(proc: RefundryProcess) -> list[str]:
    return proc.log.read_text().splitlines() if proc.log.exists() else []


def _wait_until_ready(proc: RefundryProcess) -> None:
    wait_until(
        lambda: any("Worker process is ready" in line for line in _log(proc)),
        timeout=30,
        message="the workers never started",
    )


def test_the_worker_waits_for_an_unreachable_redis_one_line_per_back_off(tmp_path: Path) -> None:
    url = f"redis://:s3cret-pw@{LOOPBACK}:{free_port()}/0"
    proc = _worker(tmp_path, url)
    proc.start()
    try:
        wait_until(lambda: len(_log(proc)) >= 2, timeout=15, message="no back-off lines")
    finally:
        proc.stop()
    lines = _log(proc)
    where = re.escape(f"redis://{LOOPBACK}:{url.rsplit(':', 1)[1]}")
    for line, wait in zip(lines, ("1", "2", "4"), strict=False):
        assert re.fullmatch(
            rf"refundry: cannot reach Redis at {where} \(.*Connection refused.*\); "
            rf"next try in {wait} s",
            line,
        ), line
    text = "\n".join(lines)
    assert "s3cret-pw" not in text and "CRITICAL" not in text and "Traceback" not in text


def test_the_worker_waits_for_an_unreachable_ledger_database(tmp_path: Path) -> None:
    url = f"postgresql://nobody:s3cret-pw@{LOOPBACK}:{free_port()}/x"
    proc = RefundryProcess(
        clean_env(tmp_path, DATABASE_URL=url), tmp_path / "worker.log", "worker", "-p", "1"
    )
    proc.start()
    try:
        wait_until(lambda: len(_log(proc)) >= 2, timeout=15, message="no back-off lines")
    finally:
        proc.stop()
    first, second = _log(proc)[:2]
    assert first.startswith("refundry: LedgerUnavailable: cannot reach the ledger's database")
    assert f"nobody@{url.rsplit('@', 1)[1]}" in first and first.endswith("; next try in 1 s")
    assert second.endswith("; next try in 2 s")
    assert "s3cret-pw" not in proc.log.read_text()


def test_the_worker_starts_once_redis_answers_then_reports_an_outage_once_per_back_off(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    redis_server.start()
    redis_server.stop()
    proc = _worker(tmp_path, redis_server.url)
    proc.start()
    outage = f"cannot reach Redis at {redis_server.url}"
    try:
        wait_until(lambda: _log(proc), timeout=15, message="no back-off line")
        redis_server.start()
        _wait_until_ready(proc)
        redis_server.stop()  # now while the workers run
        wait_until(
            lambda: sum("[WARNING] " + outage in line for line in _log(proc)) >= 2,
            timeout=20,
            message="the outage was not reported",
        )
    finally:
        proc.stop()
        redis_server.start()
    lines = _log(proc)
    assert lines[0].startswith(f"refundry: {outage} (")
    assert f"refundry: Redis at {redis_server.url} answers" in lines
    running = [line.split("] ", 4)[-1] for line in lines if "[WARNING] " + outage in line]
    assert [r.rsplit(", ", 1)[1] for r in running[:2]] == ["next line in 1 s", "next line in 2 s"]
    text = "\n".join(lines)
    assert "CRITICAL" not in text and "Restarting consumer" not in text
