"""A worker SIGKILLed while it settles results in batches (``REFUNDRY_RESULT_BATCH``) loses
nothing and doubles nothing, on SQLite and PostgreSQL: a batch's transaction either
committed every settlement and every processed mark in it, or none."""

from __future__ import annotations

import redis

from ledger import Outcome, audit
from tests.integration.test_nothing_lost import _charge_all, _report_failed
from tests.support.commands import RefundryProcess, WorkerProcesses
from tests.support.waiting import wait_until
from workers import client, runtime

N = 1200
BATCH = 100


def _refunded() -> int:
    return len(runtime.ledger().refund_latencies_ms())


def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_nothing(
    workers: WorkerProcesses,
    scheduler: RefundryProcess,
    refundry_env: dict[str, str],
) -> None:
    _charge_all(N)
    for i in range(N):
        _report_failed(i)
    assert client.balance("acct") == 90 * N
    r = redis.Redis.from_url(refundry_env["REDIS_URL"])

    def held() -> int:
        return sum(int(r.scard(k)) for k in r.scan_iter("refundry:__acks__.*"))

    workers.env |= {"REFUNDRY_RESULT_BATCH": str(BATCH)}
    workers.start(processes=2, threads=8)
    # At least one batch committed, messages held, work left: the workers are mid-batch
    # nearly all the time from here (a batch of 100 is one long transaction).
    wait_until(
        lambda: held() > 0 and BATCH <= _refunded() < N - BATCH,
        timeout=180,
        interval=0.005,
        message="no batch committed while work was left",
    )
    workers.kill()
    at_kill = _refunded()
    assert at_kill < N, "everything was settled before the kill: the test proved nothing"
    unread = int(r.llen("refundry:results")) + held()
    # Rows settled ahead of their own messages: only a batch does that.
    assert unread > N - at_kill, "no result was settled in a batch of several"

    workers.start(processes=2, threads=8)
    scheduler.start()  # its inbox sweep sends the rows whose messages died with the worker
    wait_until(lambda: _refunded() >= N, timeout=180, interval=0.2, message="refunds lost")
    wait_until(lambda: not runtime.ledger().inbox.counts().get("pending"), timeout=60)
    r.close()

    ledger = runtime.ledger()
    assert _refunded() == N  # every failure refunded, none twice
    assert client.balance("acct") == 100 * N
    assert all(ledger.generation(f"g{i}").outcome is Outcome.FAILED for i in range(N))  # type: ignore[union-attr]
    assert set(ledger.inbox.counts()) == {"processed"}
    assert audit(ledger.db) == []
