"""``BROKER_URL=amqp://…``: dramatiq's RabbitMQ broker behind the same doors as Redis. Dead
letters are listed, replayed and kept in ``.XQ``; ``/readyz`` and ``refundry worker`` probe
RabbitMQ; a password in the URL is never printed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pika
import pytest

from tests.support import brokers
from tests.support.commands import RefundryProcess, WorkerProcesses, clean_env, refundry
from tests.support.ingress import start
from tests.support.processes import LOOPBACK, free_port
from tests.support.storms import charge_generations
from tests.support.waiting import wait_until
from workers import client, runtime
from workers.demo_payloads import demo_payload


def _ready_messages(url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


@pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)
@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_a_dead_letter_on_rabbitmq_is_listed_kept_in_xq_and_replayed_onto_the_queue(
    refundry_env: dict[str, str], tmp_path: Path
) -> None:
    assert "REDIS_URL" not in refundry_env
    inbox_id = client.report_result(
        provider="kling", payload=demo_payload("kling", "ghost", "failed"), generation_id="ghost"
    )
    workers = WorkerProcesses(refundry_env, tmp_path / "workers.log")
    try:
        workers.start(processes=1, threads=2)
        wait_until(lambda: brokers.dead_lettered(refundry_env, "results") == 1, timeout=60)
    finally:
        workers.stop()
    env = clean_env(tmp_path, **refundry_env)
    listed = refundry(env, "dlq", "list")
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["message_id"] == inbox_id and row["reason"] == "ChargeNotFound generation_id=ghost"
    replayed = refundry(env, "dlq", "replay", inbox_id)
    assert json.loads(replayed.stdout) == {"replayed": inbox_id, "enqueued": True}
    assert _ready_messages(refundry_env["BROKER_URL"], "results") == 1  # back on RabbitMQ
    item = runtime.ledger().inbox.get(inbox_id)
    assert item is not None and item.state == "pending"


def test_readyz_probes_rabbitmq(tmp_path: Path, amqp_url: str) -> None:
    env = {
        "BROKER_URL": amqp_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        "REFUNDRY_HOME": str(tmp_path / "home"),
    }
    web = start(clean_env(tmp_path, **env), tmp_path)
    try:
        ready = web.http.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"database": True, "broker": True})
    finally:
        web.close()
    closed = env | {"BROKER_URL": f"amqp://guest:s3cret-pw@{LOOPBACK}:{free_port()}/%2F"}
    web = start(clean_env(tmp_path, **closed), tmp_path)
    try:
        ready = web.http.get("/readyz")
        assert (ready.status_code, ready.json()) == (503, {"database": True, "broker": False})
    finally:
        web.close()
    assert "s3cret-pw" not in web.log.read_text()


def test_the_worker_waits_for_an_unreachable_rabbitmq_without_printing_its_password(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = clean_env(tmp_path, BROKER_URL=f"amqp://refundry:s3cret-pw@{LOOPBACK}:{port}/prod")
    proc = RefundryProcess(env, tmp_path / "worker.log", "worker", "-p", "1", "-t", "1")
    proc.start()
    try:
        wait_until(lambda: len(proc.log.read_text().splitlines()) >= 2, timeout=30)
    finally:
        proc.stop()
    first, second = proc.log.read_text().splitlines()[:2]
    where = re.escape(f"amqp://refundry@{LOOPBACK}:{port}/prod")
    assert re.fullmatch(
        rf"refundry: cannot reach RabbitMQ at {where} \(.+\); next try in 1 s", first
    )
    assert second.endswith("; next try in 2 s")
    status = refundry(env, "status")
    assert json.loads(status.stdout)["broker"] == f"amqp://refundry@{LOOPBACK}:{port}/prod"
    assert "s3cret-pw" not in proc.log.read_text() + status.stdout + status.stderr


def test_a_delay_longer_than_half_the_consumer_timeout_is_refused_at_start(
    tmp_path: Path, amqp_url: str
) -> None:
    env = clean_env(
        tmp_path,
        BROKER_URL=amqp_url,
        REFUNDRY_MAX_BACKOFF_MS="1000000",
        REFUNDRY_RABBITMQ_CONSUMER_TIMEOUT_MS="1800000",
    )
    done = refundry(env, "worker", "-p", "1", "-t", "1", timeout=60)
    assert done.returncode == 4, done.stdout + done.stderr
    assert done.stderr.startswith("refundry: ConfigurationError: a delay must stay within half")
    assert "variable='REFUNDRY_MAX_BACKOFF_MS'" in done.stderr
    assert "guest" not in done.stderr


@pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)
@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_workers_running_through_a_rabbitmq_restart_apply_what_was_reported_meanwhile(
    refundry_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("rabbitmq_server")
    charge_generations(20, top_up=200)
    workers = WorkerProcesses(refundry_env, tmp_path / "workers.log")
    scheduler = RefundryProcess(
        refundry_env | {"REFUNDRY_INBOX_GRACE_MS": "1000", "REFUNDRY_SWEEP_INTERVAL_S": "1"},
        tmp_path / "scheduler.log",
        "scheduler",
    )
    try:
        workers.start(processes=1, threads=2)
        scheduler.start()
        client.report_result(provider="kling", payload=demo_payload("kling", "job-g0", "failed"))
        wait_until(lambda: client.balance("acct") == 10, timeout=60, message="not refunded")
        server.stop()  # the workers' and the scheduler's connections drop
        for i in range(1, 20):  # kept in the inbox; the enqueue fails while RabbitMQ is down
            client.report_result(
                provider="kling", payload=demo_payload("kling", f"job-g{i}", "failed")
            )
        assert client.balance("acct") == 10
        server.start()
        wait_until(lambda: client.balance("acct") == 200, timeout=120, message="not applied")
    finally:
        workers.stop()
        scheduler.stop()
        server.start()
    assert len(runtime.ledger().refund_latencies_ms()) == 20
    assert runtime.ledger().inbox.counts().get("pending") is None
    log = workers.log.read_text()  # one WARNING per back-off, not a CRITICAL per queue
    where = refundry_env["BROKER_URL"].replace("guest:guest@", "guest@")
    assert f"cannot reach RabbitMQ at {where} (" in log
    assert "CRITICAL" not in log and "guest:guest" not in log
