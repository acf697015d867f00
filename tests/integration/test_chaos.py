"""Redis and PostgreSQL restarted while workers and the scheduler run: nothing lost,
nothing doubled, and the ledger's audit still holds."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ledger.errors import LedgerUnavailable
from tests.support.commands import RefundryProcess, WorkerProcesses
from tests.support.servers import PostgresServer, RedisServer
from tests.support.waiting import wait_until
from workers import client, runtime
from workers.demo_payloads import demo_payload

N = 240


def _report(i: int) -> bool:
    """Report one result; False when the ledger said it is unavailable (it is down), to be
    retried. Any other error is a bug and fails the test."""
    outcome = "failed" if i % 2 == 0 else "succeeded"
    try:
        for _ in range(2):  # duplicated deliveries
            client.report_result(
                provider="kling", payload=demo_payload("kling", f"job-{i}", outcome)
            )
    except LedgerUnavailable:
        return False
    return True


def _settled() -> int:
    """Generations with an outcome; -1 while the ledger is unavailable."""
    try:
        ledger = runtime.ledger()
        return sum(1 for i in range(N) if (g := ledger.generation(f"g{i}")) and g.outcome)
    except LedgerUnavailable:
        return -1


@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_restarting_redis_and_postgres_mid_run_loses_nothing_and_doubles_nothing(
    workers: WorkerProcesses,
    scheduler: RefundryProcess,
    refundry_env: dict[str, str],
    redis_server: RedisServer,
    postgres_server: PostgresServer,
) -> None:
    client.grant(account_id="acct", credits=10 * N, idempotency_key="top-up", reason="test")
    for i in range(N):
        client.charge(
            generation_id=f"g{i}",
            account_id="acct",
            provider="kling",
            operation="video",
            credits=10,
            provider_job_id=f"job-{i}",
        )
    scheduler.env |= {"REFUNDRY_INBOX_GRACE_MS": "2000", "REFUNDRY_SWEEP_INTERVAL_S": "1"}
    workers.start(processes=2, threads=4)
    scheduler.start()

    third = N // 3
    for i in range(third):
        assert _report(i)
    redis_server.stop()  # graceful: AOF flushed; reports now reach only the inbox
    for i in range(third, 2 * third):
        assert _report(i)
    redis_server.start()
    postgres_server.stop()
    assert not _report(2 * third)  # refused while the ledger is down: nothing accepted
    postgres_server.start()
    for i in range(2 * third, N):
        wait_until(lambda i=i: _report(i), timeout=30, message="ledger never came back")

    wait_until(
        lambda: _settled() == N,
        timeout=180,
        interval=0.5,
        message="results lost across the restarts",
    )
    assert client.balance("acct") == 10 * N - 10 * (N // 2)  # the failed half refunded
    ledger = runtime.ledger()
    assert len(ledger.refund_latencies_ms()) == N // 2
    check = subprocess.run(
        [sys.executable, "-m", "workers.cli", "ledger", "check"],
        env=workers.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (check.returncode, check.stdout.strip()) == (0, "ok")
