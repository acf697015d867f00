"""Nothing lost, nothing doubled: the inbox, not the broker, is the record of every result."""

from __future__ import annotations

import time

import pytest

from ledger import Outcome, audit, now_ms
from tests.integration.conftest import BROKERS
from tests.support import brokers
from tests.support.commands import RefundryProcess, WorkerProcesses
from tests.support.storms import charge_generations
from tests.support.waiting import wait_until
from workers import client, runtime
from workers.demo_payloads import demo_payload
from workers.sweeps import run_inbox_sweep

pytestmark = pytest.mark.parametrize("broker", BROKERS, indirect=True)


def _charge_all(n: int, prefix: str = "g") -> None:
    charge_generations(n, prefix=prefix, top_up=100 * n)


def _report_failed(i: int, prefix: str = "g") -> str:
    return client.report_result(
        provider="kling", payload=demo_payload("kling", f"job-{prefix}{i}", "failed")
    )


def _settled(n: int, prefix: str = "g") -> int:
    ledger = runtime.ledger()
    return sum(1 for i in range(n) if (g := ledger.generation(f"{prefix}{i}")) and g.outcome)


def _sweep_now() -> None:
    # A retry's deferral (at most the test's 200 ms backoff) may still be running out.
    wait_until(lambda: run_inbox_sweep(grace_ms=0).requeued > 0, timeout=10)


def test_results_whose_messages_vanished_from_the_broker_are_applied_by_the_inbox_sweep(
    workers: WorkerProcesses, refundry_env: dict[str, str]
) -> None:
    _charge_all(20)
    for i in range(20):
        _report_failed(i)
    brokers.lose_every_message(refundry_env, ("results",))  # lost before the workers ran
    workers.start(processes=1, threads=4)
    assert _settled(20) == 0
    _sweep_now()
    wait_until(lambda: _settled(20) == 20, timeout=60, message="sweep did not deliver")
    assert client.balance("acct") == 2000
    assert len(runtime.ledger().refund_latencies_ms()) == 20
    assert runtime.ledger().inbox.counts().get("pending") is None
    assert audit(runtime.ledger().db) == []


def test_a_result_dead_lettered_for_a_missing_charge_is_applied_once_the_charge_exists(
    workers: WorkerProcesses, refundry_env: dict[str, str]
) -> None:
    client.report_result(
        provider="kling", payload=demo_payload("kling", "job-g0", "failed"), generation_id="g0"
    )
    workers.start(processes=1, threads=2)
    ledger = runtime.ledger()
    [letter] = wait_until(ledger.dead.all, timeout=60, message="no dead letter")
    assert letter["reason"] == "ChargeNotFound generation_id=g0"
    assert ledger.inbox.counts()["pending"]["n"] == 1  # kept for the sweep, not forgotten
    _charge_all(1)
    _sweep_now()
    wait_until(lambda: _settled(1) == 1, timeout=60, message="not applied after the charge")
    assert client.balance("acct") == 100
    assert audit(ledger.db) == []


def test_a_result_reported_while_the_broker_is_down_is_delivered_by_the_sweep(
    workers: WorkerProcesses,
    refundry_env: dict[str, str],
    request: pytest.FixtureRequest,
    broker: str,
) -> None:
    server = request.getfixturevalue(f"{broker}_server")
    _charge_all(1)
    server.stop()
    inbox_id = _report_failed(0)  # accepted: written to the inbox, the enqueue failed
    item = runtime.ledger().inbox.get(inbox_id)
    assert item is not None and item.state == "pending"
    server.start()
    workers.start(processes=1, threads=2)
    _sweep_now()
    wait_until(lambda: _settled(1) == 1, timeout=60, message="not delivered after restart")
    assert client.balance("acct") == 100


def test_a_worker_killed_while_holding_messages_loses_none_and_doubles_none(
    workers: WorkerProcesses,
    scheduler: RefundryProcess,
    refundry_env: dict[str, str],
    request: pytest.FixtureRequest,
    broker: str,
) -> None:
    n = 600
    _charge_all(n)
    for i in range(n):
        _report_failed(i)
    if broker == "rabbitmq":  # one result per message: held long enough for rabbitmqctl to see
        workers.env |= {"REFUNDRY_RESULT_BATCH": "1"}
    workers.start(processes=1, threads=8)
    # Kill while the worker holds fetched, unacknowledged messages: one cheap query for the
    # refunds so far (every result here is a failure), then the broker's count of messages
    # held, so the moment is not missed while 600 rows are read one by one. The bound is
    # generous for a busy host; it is not a measured figure.
    refunds = runtime.ledger().refund_latencies_ms
    holding = 0

    def holding_some() -> bool:
        nonlocal holding
        if len(refunds()) < 50:
            return False
        holding = brokers.held(refundry_env)
        return holding > 0

    wait_until(holding_some, timeout=180, interval=0.01)
    workers.kill()  # RabbitMQ puts what it held back at once; Redis keeps it for the sweep
    killed_at = time.monotonic()
    assert _settled(n) < n
    # Default grace (30 s) and sweep interval (10 s): what production runs.
    workers.start(processes=1, threads=8)
    scheduler.start()
    wait_until(
        lambda: _settled(n) == n,
        timeout=120,
        interval=0.2,
        message="killed worker's messages never applied",
    )
    recovery_s = time.monotonic() - killed_at
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"\ncrash recovery: {holding} held messages of a SIGKILLed worker applied "
            f"{recovery_s:.1f} s after the kill"
        )
    assert recovery_s < 60
    ledger = runtime.ledger()
    assert len(ledger.refund_latencies_ms()) == n
    assert client.balance("acct") == 1000 * n // 10 * 1  # every charge refunded, once
    assert all(ledger.generation(f"g{i}").outcome is Outcome.FAILED for i in range(n))  # type: ignore[union-attr]
    assert audit(ledger.db) == []


def test_the_sweep_sends_no_second_copy_while_a_retry_waits_its_backoff(
    workers: WorkerProcesses, refundry_env: dict[str, str]
) -> None:
    workers.env |= {"REFUNDRY_MIN_BACKOFF_MS": "30000", "REFUNDRY_MAX_BACKOFF_MS": "60000"}
    inbox_id = client.report_result(
        provider="kling", payload=demo_payload("kling", "job-g0", "failed"), generation_id="g0"
    )
    workers.start(processes=1, threads=1)
    ledger = runtime.ledger()

    def deferred() -> bool:
        item = ledger.inbox.get(inbox_id)
        return item is not None and item.enqueued_at_ms > now_ms() + 30_000

    wait_until(deferred, timeout=60, message="the failed attempt did not defer the sweep")
    assert ledger.inbox.claim_stale(older_than_ms=0) == []  # dramatiq holds the retry
    assert ledger.dead.all() == []
