"""Acceptance test of ``refundry demo``, the README's first command, run as a real subprocess:
on the session's real Redis and on the embedded one it starts and stops itself. The ledger it
wrote is read afterwards, not the demo's own counts."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import stat
import subprocess
from pathlib import Path
from typing import Any

from tests.support.commands import assert_check_ok, clean_env, redis_servers_under, refundry
from tests.support.waiting import wait_until

DEMO_KEYS = {
    "events",
    "refunded",
    "kept",
    "dead_lettered",
    "ledger_check",
    "p50_refund_ms",
    "p99_refund_ms",
}


def _demo_summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr tail:\n{done.stderr[-4000:]}"
    lines = done.stdout.strip().splitlines()
    assert lines, "the demo printed nothing on stdout"
    summary = json.loads(lines[-1])
    assert isinstance(summary, dict)
    assert set(summary) == DEMO_KEYS
    assert summary["ledger_check"] == "ok"
    return summary


def _assert_every_generation_accounted_for(
    db: Path, summary: dict[str, Any], generations: int
) -> None:
    """Read the ledger the demo wrote, not the demo's own counts: every generation it charged
    ended kept, refunded once, or unsettled because its only results were unclassifiable
    (each of those dead-lettered); nothing is left pending."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        charged = conn.execute(
            "SELECT generation_id, provider_job_id, outcome FROM generations"
        ).fetchall()
        refunds = conn.execute("SELECT generation_id FROM entries WHERE kind = 'refund'")
        refunded = [g for (g,) in refunds]
        inbox = conn.execute("SELECT state, generation_id, payload FROM inbox").fetchall()
        dead_letters = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    assert len(charged) == generations
    kept = {g for g, _, outcome in charged if outcome == "succeeded"}
    settled_otherwise = {g for g, _, outcome in charged if outcome not in (None, "succeeded")}
    unsettled = {g for g, _, outcome in charged if outcome is None}
    assert sorted(refunded) == sorted(settled_otherwise)  # each failure refunded, exactly once
    assert (summary["kept"], summary["refunded"]) == (len(kept), len(refunded))
    assert {state for state, _, _ in inbox} <= {"processed", "dead"}
    dead = [(gen, payload) for state, gen, payload in inbox if state == "dead"]
    assert summary["dead_lettered"] == dead_letters == len(dead)
    named_by_dead = {
        g for g, job, _ in charged for gen, payload in dead if gen == g or f'"{job}"' in payload
    }
    assert unsettled == named_by_dead
    assert len(kept) + len(refunded) + len(unsettled) == generations


def test_demo_on_real_redis(tmp_path: Path, redis_url: str) -> None:
    env = clean_env(tmp_path, REDIS_URL=redis_url)

    done = refundry(env, "demo", "--generations", "200", "--timeout", "120", timeout=300)

    summary = _demo_summary(done)
    assert summary["refunded"] > 0
    assert summary["kept"] > 0
    assert summary["dead_lettered"] > 0  # the seed's plan holds unclassifiable results
    assert summary["events"] >= 200
    _assert_every_generation_accounted_for(tmp_path / "ledger.sqlite3", summary, 200)
    for key in ("p50_refund_ms", "p99_refund_ms"):
        assert isinstance(summary[key], int)
    assert 0 < summary["p99_refund_ms"] <= 120_000  # within the demo's own timeout
    assert summary["p50_refund_ms"] <= summary["p99_refund_ms"]
    assert not (tmp_path / "home" / "redis").exists(), "embedded Redis used despite REDIS_URL"

    assert_check_ok(env)


def test_demo_on_embedded_redis(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    assert "REDIS_URL" not in env
    redis_dir = tmp_path / "home" / "redis"

    done = refundry(env, "demo", "--generations", "50", "--timeout", "120", timeout=300)

    summary = _demo_summary(done)
    assert summary["events"] >= 50
    _assert_every_generation_accounted_for(tmp_path / "ledger.sqlite3", summary, 50)
    assert redis_dir.is_dir(), "the demo did not start its embedded Redis under REFUNDRY_HOME"
    # redis.json stays (the next starter reuses its address); the server itself is stopped.
    home = tmp_path / "home"
    modes = {p.relative_to(home): stat.S_IMODE(p.stat().st_mode) for p in [home, *home.rglob("*")]}
    assert modes[Path("demo-worker.log")] == 0o600
    assert modes == {p: 0o700 if (home / p).is_dir() else 0o600 for p in modes}
    wait_until(
        lambda: not redis_servers_under(redis_dir),
        timeout=10,
        message=f"a redis-server for {redis_dir} is still running",
    )

    assert_check_ok(env)
