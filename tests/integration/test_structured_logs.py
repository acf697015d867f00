"""``REFUNDRY_LOG_FORMAT=json``: a real worker pool (dramatiq's main process and its worker
processes) writes one JSON object per line, and every line about an event names it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.commands import WorkerProcesses
from tests.support.waiting import wait_until
from workers import client, runtime
from workers.demo_payloads import demo_payload


def test_with_json_logs_every_line_parses_and_names_the_generation_and_inbox_event(
    refundry_env: dict[str, str], tmp_path: Path
) -> None:
    client.grant(account_id="acct", credits=100, idempotency_key="top-up", reason="test")
    client.charge(
        generation_id="g-json",
        account_id="acct",
        provider="kling",
        operation="video",
        credits=40,
        provider_job_id="job-json",
    )
    # found through its job id: the worker learns the generation id only as it applies it
    refunded = client.report_result(
        provider="kling", payload=demo_payload("kling", "job-json", "failed")
    )
    ghost = client.report_result(
        provider="kling", payload=demo_payload("kling", "ghost", "failed"), generation_id="ghost"
    )
    log = tmp_path / "workers.log"
    workers = WorkerProcesses(refundry_env | {"REFUNDRY_LOG_FORMAT": "json"}, log)
    workers.start(processes=1, threads=2)
    try:
        wait_until(lambda: client.balance("acct") == 100, timeout=60, message="not refunded")
        wait_until(
            lambda: runtime.ledger().dead.get(ghost), timeout=60, message="not dead-lettered"
        )
    finally:
        workers.stop()

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]  # each one parses
    assert all(isinstance(r, dict) and {"time", "level", "message"} <= r.keys() for r in records)
    assert any(r["logger"].startswith("dramatiq.MainProcess") for r in records)
    for generation_id, inbox_id in (("g-json", refunded), ("ghost", ghost)):
        about = [r for r in records if generation_id in r["message"] or inbox_id in r["message"]]
        assert about, f"no line about {generation_id}"
        for r in about:
            assert r.get("generation_id") == generation_id, r
            assert r.get("inbox_id") == inbox_id, r
            assert r.get("provider") == "kling", r
            assert r.get("queue") == "results", r
