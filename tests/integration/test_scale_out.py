"""Scale out: several worker process groups and two schedulers sharing one broker (Redis or
RabbitMQ) and one PostgreSQL. A storm is refunded exactly once; a group SIGKILLed mid-storm
loses nothing; pools that would not fit in the server's connections are refused at start.

``REFUNDRY_TEST_STORM`` sets the storm's size (default 240: small enough for CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ledger import Outcome, audit
from tests.integration.conftest import BROKERS
from tests.support.commands import RefundryProcess, WorkerProcesses, refundry
from tests.support.storms import charge_generations
from tests.support.waiting import wait_until
from workers import client, pg_pools, runtime
from workers.demo_payloads import demo_payload

STORM = int(os.environ.get("REFUNDRY_TEST_STORM", "240"))
GROUPS = 3

pytestmark = pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)


def _refunded() -> int:
    return len(runtime.ledger().refund_latencies_ms())


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_a_storm_over_three_worker_groups_and_two_schedulers_is_refunded_once_despite_a_kill(
    refundry_env: dict[str, str], tmp_path: Path
) -> None:
    # Sweeps every second with a 2 s grace: both schedulers send pending rows again while
    # the storm is still being worked, so duplicates race each other across groups.
    env = refundry_env | {"REFUNDRY_INBOX_GRACE_MS": "2000", "REFUNDRY_SWEEP_INTERVAL_S": "1"}
    groups = [WorkerProcesses(env, tmp_path / f"group{i}.log") for i in range(GROUPS)]
    schedulers = [
        RefundryProcess(env, tmp_path / f"scheduler{i}.log", "scheduler") for i in range(2)
    ]
    try:
        charge_generations(STORM, top_up=10 * STORM)
        assert client.balance("acct") == 0
        for group in groups:
            group.start(processes=1, threads=4)
        for scheduler in schedulers:
            scheduler.start()
        for i in range(STORM):
            for _ in range(2):  # every result delivered twice
                client.report_result(
                    provider="kling", payload=demo_payload("kling", f"job-g{i}", "failed")
                )
        wait_until(lambda: _refunded() >= STORM // 5, timeout=120, interval=0.05)
        groups[0].kill()  # SIGKILL mid-storm: whatever it held is redelivered or re-swept
        assert _refunded() < STORM, "the storm ended before the kill: the test proved nothing"
        wait_until(
            lambda: _refunded() >= STORM, timeout=180, interval=0.2, message="storm not refunded"
        )
    finally:
        for process in (*groups, *schedulers):
            process.stop()
    ledger = runtime.ledger()
    assert _refunded() == STORM  # once each, never twice
    assert client.balance("acct") == 10 * STORM
    assert all(ledger.generation(f"g{i}").outcome is Outcome.FAILED for i in range(STORM))  # type: ignore[union-attr]
    assert audit(ledger.db) == []


def test_pools_that_would_pass_max_connections_are_refused_at_start(
    refundry_env: dict[str, str], postgres_url: str
) -> None:
    done = refundry(refundry_env, "worker", "-p", "64", "-t", "256", timeout=60)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "ConfigurationError" in done.stderr and "max_connections" in done.stderr
    assert "needed=16512" in done.stderr  # 64 processes x (256 threads + 2)
    password = postgres_url.partition("://")[2].partition("@")[0].partition(":")[2]
    assert not password or password not in done.stderr


def test_every_running_pool_is_counted_wherever_it_runs(
    refundry_env: dict[str, str], tmp_path: Path
) -> None:
    workers = WorkerProcesses(refundry_env, tmp_path / "workers.log")
    scheduler = RefundryProcess(refundry_env, tmp_path / "scheduler.log", "scheduler")
    ledger = runtime.ledger()
    expected = 2 * pg_pools.worker_pool_size(3) + 10  # the worker parent holds none

    def counted() -> int:
        found = pg_pools.room(ledger, leave_out=runtime.pool_name())
        assert found is not None
        return found.refundry_pools

    try:
        workers.start(processes=2, threads=3)
        scheduler.start()
        wait_until(lambda: counted() == expected, timeout=60, message="pools not counted")
    finally:
        workers.stop()
        scheduler.stop()
    wait_until(lambda: counted() == 0, timeout=30, message="stopped pools still counted")
