"""Sentry, as the on-call engineer's project receives it: real worker and scheduler processes
with a real DSN pointing at a loopback Sentry ingest endpoint (``tests.support.fake_sentry``).

A poison event's dead letter arrives grouped by its fingerprint, with its tags; the secrets
and the e-mail address planted in its payload are in no byte of any envelope; the
scheduler's sweeps check in to their Crons monitors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.commands import RefundryProcess, WorkerProcesses
from tests.support.fake_sentry import FakeSentry
from tests.support.waiting import wait_until
from workers import client, runtime

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STRIPE_KEY = "sk_live_51NzPlantedKeyForRefundryTests0123456789"
EMAIL = "jane.doe@customer-mail.example"
PLANTED = (WEBHOOK_SECRET, STRIPE_KEY, EMAIL)


@pytest.fixture
def sentry() -> Iterator[FakeSentry]:
    with FakeSentry() as server:
        yield server


def _poison(job: str) -> dict[str, Any]:
    """A fal result that cannot be classified (no status, ``payload`` null), carrying secrets
    and an e-mail address under keys that do not name them: only their values betray them."""
    return {
        "request_id": job,
        "payload": None,
        "note": f"configured with {WEBHOOK_SECRET}",
        "hint": f"charged through {STRIPE_KEY}",
        "customer": EMAIL,
    }


def _alerts(sentry: FakeSentry, kind: str) -> list[dict[str, Any]]:
    return [e for e in sentry.events() if e.get("tags", {}).get("alert") == kind]


def test_a_poison_events_dead_letter_reaches_sentry_with_its_fingerprint_tags_and_no_secret(
    refundry_env: dict[str, str], sentry: FakeSentry, tmp_path: Path
) -> None:
    client.grant(account_id="acct", credits=100, idempotency_key="top-up", reason="test")
    client.charge(
        generation_id="g-poison",
        account_id="acct",
        provider="fal",
        operation="video",
        credits=40,
        provider_job_id="req-poison",
    )
    inbox_id = client.report_result(
        provider="fal", payload=_poison("req-poison"), generation_id="g-poison"
    )
    workers = WorkerProcesses(refundry_env | {"SENTRY_DSN": sentry.dsn}, tmp_path / "w.log")
    workers.start(processes=1, threads=1)
    try:
        [dead] = wait_until(
            lambda: _alerts(sentry, "dead-letter"), timeout=60, message="no dead-letter event"
        )
    finally:
        workers.stop()  # sentry-sdk flushes what it holds as the process exits

    # Unclassifiable is Refundry's own error: dead-lettered and alerted once, tagged; the
    # dramatiq integration's untagged report of the same failure is dropped
    assert [e for e in sentry.events() if e.get("exception")] == []
    assert len(_alerts(sentry, "dead-letter")) == 1

    assert dead["fingerprint"] == ["dead-letter", "fal", "Unclassifiable"]
    assert dead["tags"]["provider"] == "fal"
    assert dead["tags"]["reason"] == "Unclassifiable"
    assert dead["tags"]["queue"] == "results"
    assert dead["tags"]["process"] == "worker"
    assert dead["level"] == "error"
    assert dead["contexts"]["refundry"] == {"inbox_id": inbox_id, "generation_id": "g-poison"}
    assert runtime.ledger().dead.get(inbox_id) is not None
    assert sentry.refused == []
    everything = b"".join(sentry.raw)
    for secret in PLANTED:
        assert secret.encode() not in everything, secret
    # (events that carry them masked: tests/unit/test_sentry_setup.py)


def test_the_scheduler_checks_in_to_a_crons_monitor_per_sweep(
    refundry_env: dict[str, str], sentry: FakeSentry, tmp_path: Path
) -> None:
    env = refundry_env | {"SENTRY_DSN": sentry.dsn, "REFUNDRY_SWEEP_INTERVAL_S": "1"}
    scheduler = RefundryProcess(env, tmp_path / "scheduler.log", "scheduler")
    scheduler.start()
    slugs = ("refundry-inbox-sweep", "refundry-stuck-sweep")

    def runs_done() -> bool:
        done = {c["monitor_slug"] for c in sentry.check_ins() if c["status"] == "ok"}
        return set(slugs) <= done

    try:
        wait_until(runs_done, timeout=60, message="no completed check-in per sweep")
    finally:
        scheduler.stop()

    for slug in slugs:
        mine = [c for c in sentry.check_ins() if c["monitor_slug"] == slug]
        started = {c["check_in_id"] for c in mine if c["status"] == "in_progress"}
        ended = [c for c in mine if c["status"] == "ok"]
        assert ended and all(c["check_in_id"] in started for c in ended), slug
        assert all(isinstance(c["duration"], float) and c["duration"] >= 0 for c in ended)
        assert mine[0]["monitor_config"]["schedule"] == {
            "type": "interval",
            "value": 1,
            "unit": "minute",
        }
    assert not [c for c in sentry.check_ins() if c["status"] == "error"]
    assert sentry.refused == []
