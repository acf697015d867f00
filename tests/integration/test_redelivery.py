"""A redelivered event is recognised by its delivery identity before it is applied, and
counted: the inbox keeps one row per event, however many times it is delivered."""

from __future__ import annotations

from typing import Any

import redis

from ledger import Ledger
from workers import client, runtime

FAILED = {"id": "p-1", "status": "failed", "error": "CUDA out of memory"}


def test_a_redelivered_event_is_recognised_before_it_is_applied_and_counted(
    ledger: Ledger,
) -> None:
    first = ledger.inbox.record(
        id="m1", kind="result", provider="replicate", payload=FAILED, delivery_key="job:p-1:failed"
    )
    again = ledger.inbox.record(
        id="m2", kind="result", provider="replicate", payload=FAILED, delivery_key="job:p-1:failed"
    )
    assert (first.id, first.new, first.deliveries) == ("m1", True, 1)
    assert (again.id, again.new, again.deliveries) == ("m1", False, 2)
    assert ledger.inbox.get("m2") is None
    assert ledger.inbox.redeliveries() == 1
    assert ledger.inbox.counts()["pending"]["n"] == 1


def test_the_same_key_from_another_provider_is_another_event(ledger: Ledger) -> None:
    ledger.inbox.record(id="m1", kind="result", provider="replicate", payload={}, delivery_key="k")
    other = ledger.inbox.record(
        id="m2", kind="result", provider="fal", payload={}, delivery_key="k"
    )
    assert (other.id, other.new) == ("m2", True)


def _queued(url: str) -> int:
    r = redis.Redis.from_url(url)
    try:
        return int(r.hlen("refundry:results.msgs"))  # dramatiq keeps each message body here
    finally:
        r.close()


def _inbox_rows() -> int:
    return sum(c["n"] for c in runtime.ledger().inbox.counts().values())


def test_a_result_reported_twice_is_kept_and_enqueued_once(
    refundry_env: dict[str, str],
) -> None:
    ids = [client.report_result(provider="replicate", payload=dict(FAILED)) for _ in range(3)]
    assert len(set(ids)) == 1
    assert _inbox_rows() == 1
    assert _queued(refundry_env["REDIS_URL"]) == 1
    assert runtime.ledger().inbox.redeliveries() == 2


def test_a_contradicting_outcome_for_the_same_job_is_a_new_event(
    refundry_env: dict[str, str],
) -> None:
    succeeded: dict[str, Any] = {
        "id": "p-1",
        "status": "succeeded",
        "output": "https://r.example/a.png",
    }
    failed = client.report_result(provider="replicate", payload=dict(FAILED))
    later = client.report_result(provider="replicate", payload=succeeded)
    assert failed != later
    assert _inbox_rows() == 2


def test_a_redelivery_of_a_dead_lettered_event_gets_its_own_chance(ledger: Ledger) -> None:
    """A forged event that took a genuine event's identity first, or an event dead-lettered
    before its cause was fixed, does not make the next delivery a mere repeat."""
    forged = ledger.inbox.record(
        id="m1", kind="payment", provider="stripe", payload={"forged": True}, delivery_key="k"
    )
    ledger.dead.record(
        message_id="m1",
        actor="process_payment",
        queue="payments",
        reason="NotAtPaymentProvider",
        error_class="NotAtPaymentProvider",
        message="{}",
        inbox_id="m1",
        permanent=True,
    )
    genuine = ledger.inbox.record(
        id="m2", kind="payment", provider="stripe", payload={"genuine": True}, delivery_key="k"
    )
    assert (forged.id, genuine.id, genuine.new, genuine.state) == ("m1", "m1", True, "pending")
    item = ledger.inbox.get("m1")
    assert item is not None and item.state == "pending" and item.payload == {"genuine": True}
    assert ledger.dead.get("m1") is None


def test_a_reopened_event_takes_what_its_new_delivery_says(ledger: Ledger) -> None:
    """A result first reported for the wrong generation, dead-lettered, then reported again
    for the right one is applied to the right one."""
    ledger.inbox.record(
        id="m1",
        kind="result",
        provider="replicate",
        payload=FAILED,
        generation_id="gen-B",
        operation="video",
        delivery_key="job:p-1:failed",
    )
    ledger.dead.record(
        message_id="m1",
        actor="process_result",
        queue="results",
        reason="ResultForAnotherJob",
        error_class="ResultForAnotherJob",
        message="{}",
        inbox_id="m1",
        permanent=True,
    )
    again = ledger.inbox.record(
        id="m2",
        kind="result",
        provider="replicate",
        payload=FAILED,
        generation_id="gen-A",
        operation="image",
        delivery_key="job:p-1:failed",
    )
    item = ledger.inbox.get(again.id)
    assert item is not None and (item.generation_id, item.operation) == ("gen-A", "image")
