"""``REFUNDRY_LOG_FORMAT=json``: a real worker pool (dramatiq's main process and its worker
processes) writes one JSON object per line, and every line about an event names it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.support.commands import WorkerProcesses
from tests.support.ingress import IngressServer
from tests.support.processes import LOOPBACK, free_port
from tests.support.waiting import wait_until
from workers import client, runtime
from workers import dead_letter_operations as dlq
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


def _json_lines(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert line.startswith("{"), line  # one JSON object per line, nothing in plain text
    return [json.loads(line) for line in lines]


def test_json_logs_everywhere_uvicorn_lines_in_every_web_process(
    refundry_env: dict[str, str], tmp_path: Path
) -> None:
    web = IngressServer(refundry_env | {"REFUNDRY_LOG_FORMAT": "json"}, tmp_path / "web.log")
    try:
        web.start("-p", "2")
        wait_until(
            lambda: web.log.read_text().count("Started server process") == 2,
            timeout=30,
            message="the second web process did not start",
        )
    finally:
        web.close()
    records = _json_lines(web.log)
    uvicorn = [r for r in records if r["logger"].startswith("uvicorn")]
    assert any("Started server process" in r["message"] for r in uvicorn), uvicorn
    assert len({r["process"] for r in uvicorn}) >= 3  # the supervisor and both servers


def test_json_logs_everywhere_while_the_worker_waits_for_redis(
    refundry_env: dict[str, str], tmp_path: Path
) -> None:
    nowhere = f"redis://{LOOPBACK}:{free_port()}/0"
    log = tmp_path / "workers.log"
    workers = WorkerProcesses(
        refundry_env | {"REFUNDRY_LOG_FORMAT": "json", "REDIS_URL": nowhere}, log
    )
    workers.start(processes=1, threads=1)
    try:
        wait_until(lambda: "cannot reach Redis" in log.read_text(), timeout=30)
    finally:
        workers.stop()
    [waiting, *_] = [r for r in _json_lines(log) if "cannot reach Redis" in r["message"]]
    assert waiting["level"] == "WARNING"


def test_json_logs_everywhere_a_purged_dead_letter_names_its_inbox_event(
    refundry_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    ledger = runtime.ledger()
    ledger.inbox.record(id="in_purged", kind="result", provider="kling", payload={})
    ledger.dead.record(
        message_id="in_purged",
        actor="process_result",
        queue="results",
        reason="ChargeNotFound generation_id=ghost",
        error_class="ChargeNotFound",
        message="{}",
        inbox_id="in_purged",
    )
    with caplog.at_level(logging.INFO, logger="workers.dead_letter_operations"):
        dlq.purge(ledger, "in_purged")
    [purged] = [r for r in caplog.records if "purged" in r.getMessage()]
    assert purged.__dict__.get("inbox_id") == "in_purged"
