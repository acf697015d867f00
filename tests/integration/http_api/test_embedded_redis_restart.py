"""Without ``REDIS_URL``, restarting ``refundry web`` (which started the embedded Redis and
stops it when it exits) does not strand a running worker: the new web process brings the
embedded Redis back on the same address, the worker reconnects, and a result accepted after
the restart is applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.api import KEY_OLD, MAX_BODY_BYTES, charge_body, new_id
from tests.support.commands import WorkerProcesses
from tests.support.ingress import IngressServer, start
from tests.support.waiting import wait_until
from workers.demo_payloads import demo_payload

AUTH = {"authorization": f"Bearer {KEY_OLD}"}


def test_a_worker_keeps_applying_results_across_a_web_restart(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        "REFUNDRY_HOME": str(tmp_path / "home"),
        "REFUNDRY_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "REFUNDRY_API_KEYS": KEY_OLD,
    }
    web = start(env, tmp_path)  # starts the embedded Redis (no REDIS_URL)
    workers = WorkerProcesses(env, tmp_path / "workers.log")
    workers.start(processes=1, threads=1)
    try:
        account = new_id("acct")
        top_up = {"account_id": account, "credits": 100, "idempotency_key": "g", "reason": "r"}
        assert web.http.post("/v1/grants", json=top_up, headers=AUTH).status_code == 200
        before, after = charge_body(account, credits=40), charge_body(account, credits=30)
        for charge in (before, after):
            assert web.http.post("/v1/charges", json=charge, headers=AUTH).status_code == 200
        _fail(web, before)  # the worker is up, on the first web's embedded Redis

        web.stop()  # SIGTERM: its embedded Redis is shut down with it
        web.start()

        assert _fail(web, after)["refund"]["credits"] == 30
    finally:
        workers.stop()
        web.close()


def _fail(web: IngressServer, charge: dict[str, Any]) -> dict[str, Any]:
    """Post a failed result for ``charge``; its receipt once refunded."""
    payload = demo_payload("fal", charge["provider_job_id"], "failed")
    result = {"provider": "fal", "payload": payload, "operation": "video"}
    assert web.http.post("/v1/results", json=result, headers=AUTH).status_code == 202

    def refunded() -> dict[str, Any] | None:
        got = web.http.get(f"/v1/generations/{charge['generation_id']}", headers=AUTH)
        receipt: dict[str, Any] = got.json()
        return receipt if receipt["status"] == "refunded" else None

    return wait_until(refunded, timeout=60, message="the worker never applied the result")
