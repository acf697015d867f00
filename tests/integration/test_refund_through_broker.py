"""A provider result travels through the real broker (Redis and RabbitMQ) to real worker
processes and into the real ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from ledger import Outcome, audit
from ledger.errors import ChargeNotFound, Unclassifiable, UnknownProvider
from tests.integration.conftest import BROKERS
from tests.support import brokers
from tests.support.commands import WorkerProcesses
from tests.support.waiting import wait_until
from workers import client, runtime
from workers.demo_payloads import demo_payload

pytestmark = pytest.mark.parametrize("broker", BROKERS, indirect=True)


def _idle(env: dict[str, str]) -> bool:
    return brokers.idle(env, "results")


def _charge(gen: str, job: str, credits: int = 40, provider: str = "kling") -> None:
    client.grant(account_id="acct", credits=1000, idempotency_key="top-up", reason="test")
    client.charge(
        generation_id=gen,
        account_id="acct",
        provider=provider,
        operation="video",
        credits=credits,
        provider_job_id=job,
    )


def test_same_failure_delivered_fifty_times_to_two_processes_refunds_once(
    workers: WorkerProcesses, refundry_env: dict[str, str]
) -> None:
    _charge("g1", "job-1")
    failed = demo_payload("kling", "job-1", "failed")
    for i in range(50):  # half by generation id, half found through the provider job id
        client.report_result(
            provider="kling", payload=failed, generation_id="g1" if i % 2 else None
        )
    workers.start(processes=2, threads=4)
    ledger = runtime.ledger()
    wait_until(lambda: _idle(refundry_env), timeout=60, message="workers did not drain")
    gen = ledger.generation("g1")
    assert gen is not None and gen.outcome is Outcome.FAILED
    assert client.balance("acct") == 1000
    assert len(ledger.refund_latencies_ms()) == 1
    assert audit(ledger.db) == []


def test_first_terminal_result_wins_and_a_contradiction_is_recorded(
    workers: WorkerProcesses, refundry_env: dict[str, str]
) -> None:
    _charge("g2", "job-2")
    workers.start(processes=1, threads=1)  # one thread: the delivery order is the send order
    client.report_result(provider="kling", payload=demo_payload("kling", "job-2", "pending"))
    client.report_result(provider="kling", payload=demo_payload("kling", "job-2", "succeeded"))
    client.report_result(provider="kling", payload=demo_payload("kling", "job-2", "failed"))
    ledger = runtime.ledger()
    wait_until(lambda: len(ledger.outcome_reports("g2")) == 2, timeout=60)
    reports = {r["outcome"]: r["disposition"] for r in ledger.outcome_reports("g2")}
    assert reports == {"succeeded": "applied", "failed": "conflict"}
    assert client.balance("acct") == 960


def test_unclassifiable_result_is_dead_lettered_at_once_with_its_reason_and_no_secret(
    workers: WorkerProcesses, refundry_env: dict[str, str]
) -> None:
    _charge("g3", "req-3", provider="fal")
    payload = {
        "request_id": "req-3",
        "payload": None,
        "api_key": "sk-live-very-secret",
        "note": "https://v3.fal.media/x.mp4?X-Amz-Signature=abcdef",
    }
    message_id = client.report_result(provider="fal", payload=payload, generation_id="g3")
    workers.start(processes=1, threads=2)
    ledger = runtime.ledger()
    [letter] = wait_until(ledger.dead.all, timeout=60, message="no dead letter")
    assert letter["message_id"] == message_id
    assert letter["reason"].startswith("Unclassifiable")
    assert "sk-live-very-secret" not in letter["message"]
    assert "abcdef" not in letter["message"]
    assert json.loads(letter["message"])["event"]["generation_id"] == "g3"
    wait_until(lambda: brokers.dead_lettered(refundry_env, "results") == 1, timeout=30)
    assert client.balance("acct") == 960  # nothing guessed, nothing refunded


def test_result_for_a_charge_never_recorded_is_retried_then_dead_lettered(
    workers: WorkerProcesses, refundry_env: dict[str, str]
) -> None:
    client.report_result(
        provider="kling", payload=demo_payload("kling", "ghost", "failed"), generation_id="ghost"
    )
    workers.start(processes=1, threads=2)
    ledger = runtime.ledger()
    [letter] = wait_until(ledger.dead.all, timeout=60, message="no dead letter")
    assert letter["reason"] == f"{ChargeNotFound.__name__} generation_id=ghost"
    assert client.balance("acct") == 0
    assert audit(ledger.db) == []


def test_unknown_provider_is_refused_before_anything_is_enqueued(
    refundry_env: dict[str, str],
) -> None:
    with pytest.raises(UnknownProvider):
        client.report_result(provider="no-such-ai", payload={"status": "failed"})
    with pytest.raises(UnknownProvider):
        client.charge(
            generation_id="g", account_id="a", provider="no-such-ai", operation="video", credits=1
        )
    assert _idle(refundry_env)


def test_payload_that_is_not_a_json_object_is_refused(refundry_env: dict[str, str]) -> None:
    with pytest.raises(Unclassifiable):
        client.report_result(provider="fal", payload=["not", "an", "object"])  # type: ignore[arg-type]
    with pytest.raises(Unclassifiable):
        client.report_result(provider="fal", payload={"status": {1, 2}})
    assert _idle(refundry_env)
