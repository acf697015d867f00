"""The durable inbox on both backends: kept before enqueue, processed with its effect,
claimed once by concurrent sweepers."""

from __future__ import annotations

import threading

import pytest

from ledger import Ledger, Outcome, Settlement, now_ms
from ledger.errors import ChargeNotFound


def _charged(ledger: Ledger) -> None:
    ledger.grant(account_id="acct", credits=100, idempotency_key="top", reason="t")
    ledger.charge(
        generation_id="g1",
        account_id="acct",
        provider="fal",
        operation="video",
        credits=30,
        provider_job_id="job-1",
    )


def test_an_event_is_pending_until_its_effect_commits(ledger: Ledger) -> None:
    _charged(ledger)
    ledger.inbox.record(
        id="m1", kind="result", provider="fal", payload={"a": 1}, generation_id="g1"
    )
    item = ledger.inbox.get("m1")
    assert item is not None and item.state == "pending" and item.payload == {"a": 1}
    ledger.settle(
        generation_id="g1",
        outcome=Outcome.FAILED,
        reason="e",
        refund=True,
        failure_known_at_ms=1,
        inbox_id="m1",
    )
    item = ledger.inbox.get("m1")
    assert item is not None and item.state == "processed"


def test_a_refused_settlement_leaves_the_event_pending(ledger: Ledger) -> None:
    ledger.inbox.record(id="m1", kind="result", provider="fal", payload={}, generation_id="nope")
    with pytest.raises(ChargeNotFound):
        ledger.settle(
            generation_id="nope",
            outcome=Outcome.FAILED,
            reason="e",
            refund=True,
            failure_known_at_ms=1,
            inbox_id="m1",
        )
    item = ledger.inbox.get("m1")
    assert item is not None and item.state == "pending"


def test_a_pending_result_is_processed_without_effect(ledger: Ledger) -> None:
    _charged(ledger)
    ledger.inbox.record(id="m1", kind="result", provider="fal", payload={})
    assert (
        ledger.settle(
            generation_id="g1",
            outcome=Outcome.PENDING,
            reason="q",
            refund=False,
            failure_known_at_ms=1,
            inbox_id="m1",
        )
        is Settlement.PENDING
    )
    item = ledger.inbox.get("m1")
    assert item is not None and item.state == "processed"
    assert ledger.balance("acct") == 70


def test_stale_rows_are_claimed_once_by_concurrent_sweepers(ledger: Ledger) -> None:
    for i in range(40):
        ledger.inbox.record(id=f"m{i}", kind="result", provider="fal", payload={})
    claimed: list[str] = []
    lock = threading.Lock()
    later = now_ms() + 10 * 60_000  # ten minutes on: every row is five minutes stale

    def sweep() -> None:
        rows = ledger.inbox.claim_stale(older_than_ms=5 * 60_000, limit=40, at_ms=later)
        with lock:
            claimed.extend(r["id"] for r in rows)

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(claimed) == sorted(f"m{i}" for i in range(40))  # each exactly once
    assert ledger.inbox.claim_stale(older_than_ms=5 * 60_000, at_ms=later) == []


def test_fresh_rows_are_not_claimed(ledger: Ledger) -> None:
    ledger.inbox.record(id="m1", kind="result", provider="fal", payload={})
    assert ledger.inbox.claim_stale(older_than_ms=60_000) == []


def test_a_permanent_dead_letter_closes_the_event_a_transient_one_does_not(
    ledger: Ledger,
) -> None:
    for i in (1, 2):
        ledger.inbox.record(id=f"m{i}", kind="result", provider="fal", payload={})
    ledger.dead.record(
        message_id="m1",
        actor="a",
        queue="q",
        reason="Unclassifiable",
        error_class="Unclassifiable",
        message="{}",
        inbox_id="m1",
        permanent=True,
    )
    ledger.dead.record(
        message_id="m2",
        actor="a",
        queue="q",
        reason="ChargeNotFound",
        error_class="ChargeNotFound",
        message="{}",
        inbox_id="m2",
        permanent=False,
    )
    first, second = ledger.inbox.get("m1"), ledger.inbox.get("m2")
    assert first is not None and first.state == "dead"
    assert second is not None and second.state == "pending"
    assert ledger.inbox.counts()["pending"]["n"] == 1
