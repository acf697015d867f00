"""Smoke test of ``refundry bench`` and ``refundry bench --storm`` at a small N, run as real
subprocesses on the session's Redis, on SQLite and PostgreSQL. Nothing here is timed: the
figures are only checked to be there and sane, and the ledger the run wrote is audited
again afterwards with its own SQL."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.commands import assert_check_ok, clean_env, refundry

BENCH_KEYS = {
    "bare_per_s",
    "peer_per_s",
    "refundry_per_s",
    "ratio",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "rss_mb_max",
    "events",
    "settings",
    "machine",
    "ledger_check",
}
STORM_KEYS = {"storm_events", "storm_seconds", "storm_per_s", "ledger_check", "machine"}


@pytest.fixture(params=["sqlite", "postgresql"])
def bench_env(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str) -> dict[str, str]:
    env = clean_env(tmp_path, REDIS_URL=redis_url)
    if request.param == "postgresql":
        env["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    return env


def _figures(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr tail:\n{done.stderr[-4000:]}"
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(figures, dict)
    return figures


def _refunds(env: dict[str, str]) -> tuple[int, int]:
    """(refund entries, distinct generations refunded), read with the test's own SQL."""
    sql = "SELECT count(*), count(DISTINCT generation_id) FROM entries WHERE kind = 'refund'"
    url = env["DATABASE_URL"]
    if url.startswith("postgresql"):
        with psycopg.connect(url, options="-c search_path=refundry") as conn:
            row = conn.execute(sql).fetchone()
    else:
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_bench_reports_every_figure_and_a_clean_ledger(bench_env: dict[str, str]) -> None:
    done = refundry(bench_env, "bench", "--events", "200", "--json", timeout=600)

    figures = _figures(done)
    assert set(figures) >= BENCH_KEYS
    assert figures["events"] == 200
    assert figures["ledger_check"] == "ok"
    for key in ("bare_per_s", "peer_per_s", "refundry_per_s", "ratio", "rss_mb_max"):
        assert figures[key] > 0, key
    assert 0 <= figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert figures["machine"]["backend"] in bench_env["DATABASE_URL"]
    assert "refundry bench" in done.stdout  # the table came first
    # 200 timed, 200 paced (5 s at 200/s would be 1,000: capped at --events), one warm-up.
    assert _refunds(bench_env) == (401, 401)
    assert_check_ok(bench_env)


def test_storm_refunds_every_failure_once(bench_env: dict[str, str]) -> None:
    done = refundry(bench_env, "bench", "--storm", "500", "--json", timeout=600)

    figures = _figures(done)
    assert set(figures) >= STORM_KEYS
    assert (figures["storm_events"], figures["ledger_check"]) == (500, "ok")
    assert figures["storm_seconds"] > 0
    assert figures["storm_per_s"] > 0
    assert _refunds(bench_env) == (501, 501)  # the storm and its warm-up, each once
    assert_check_ok(bench_env)
