"""With the ledger's PostgreSQL stopped, ``refundry web`` keeps nothing and says so (503, and
``/readyz`` 503) so that the provider delivers again; once the database is back the retried
delivery is kept and refunded once, and what was kept before the outage is not lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import audit
from tests.integration.conftest import WorkerProcesses
from tests.support.ingress import body, inbox_rows, standard_headers, start
from tests.support.postgres_server import PostgresServer
from tests.support.waiting import wait_until
from workers import client, runtime
from workers.demo_payloads import demo_payload

KLING = "whsec_" + "b3V0YWdlLWtsaW5nLWluZ3Jlc3Mtc2VjcmV0LTMyYnl0ZQ=="


def _failure(job: str) -> tuple[str, dict[str, str]]:
    text = body(demo_payload("kling", job, "failed"))
    return text, standard_headers(KLING, text, webhook_id=f"msg-{job}")


@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_a_delivery_during_a_database_outage_is_503_then_kept_and_refunded_once(
    refundry_env: dict[str, str],
    workers: WorkerProcesses,
    postgres_server: PostgresServer,
    tmp_path: Path,
) -> None:
    env = refundry_env | {"KLING_WEBHOOK_SECRET": KLING, "REFUNDRY_INGRESS_DEADLINE_S": "3"}
    web = start(env, tmp_path)
    try:
        client.grant(account_id="acct", credits=100, idempotency_key="top-up", reason="test")
        for i in (1, 2):
            client.charge(
                generation_id=f"g{i}",
                account_id="acct",
                provider="kling",
                operation="video",
                credits=30,
                provider_job_id=f"job-{i}",
            )
        assert web.post("kling", *_failure("job-1")).status_code == 200  # kept before

        postgres_server.stop()
        try:
            during = web.post("kling", *_failure("job-2"))
            assert (during.status_code, during.content) == (503, b"")
            assert during.headers["retry-after"] == "5"
            ready = web.http.get("/readyz")
            assert (ready.status_code, ready.json()) == (503, {"database": False, "broker": True})
        finally:
            postgres_server.start()

        wait_until(  # the provider's retries, until one is answered 200
            lambda: web.post("kling", *_failure("job-2")).status_code == 200,
            timeout=60,
            interval=0.5,
            message="the delivery was never kept after the database came back",
        )
        assert web.http.get("/readyz").status_code == 200
    finally:
        web.close()

    workers.env |= env
    workers.start(processes=1, threads=2)
    wait_until(lambda: client.balance("acct") == 100, timeout=60, message="not both refunded")
    kept = [payload["data"]["task_id"] for _, payload in inbox_rows(env["DATABASE_URL"])]
    assert sorted(kept) == ["job-1", "job-2"]  # each delivery kept once, none lost
    ledger = runtime.ledger()
    assert len(ledger.refund_latencies_ms()) == 2
    assert audit(ledger.db) == []
