"""Settling results in batches over the real ledger (SQLite and PostgreSQL): every row of a
batch settled with its effect in one transaction, a failing event left out alone, rows in
their backoff left to their retry, and concurrent batches doubling nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from handlers.generation import RefundPolicy
from handlers.intake import new_event
from handlers.result_batches import settle_result_batch
from ledger import Ledger, Settlement, audit, now_ms
from workers.demo_payloads import demo_payload

POLICY = RefundPolicy()


def _charge(ledger: Ledger, n: int, *, with_job: bool = True, first: int = 0) -> None:
    ledger.grant(account_id="acct", credits=10_000, idempotency_key=f"top-{first}", reason="t")
    for i in range(first, first + n):
        ledger.charge(
            generation_id=f"g{i}",
            account_id="acct",
            provider="kling",
            operation="video",
            credits=10,
            provider_job_id=f"job-{i}" if with_job else None,
        )


def _report(ledger: Ledger, i: int, outcome: str = "failed", job: str | None = None) -> str:
    payload = demo_payload("kling", job or f"job-{i}", outcome)
    event = new_event(kind="result", provider="kling", payload=payload, generation_id=f"g{i}")
    [recorded] = ledger.inbox.record_many([event])
    return recorded.id


def _state(ledger: Ledger, inbox_id: str) -> str:
    item = ledger.inbox.get(inbox_id)
    assert item is not None
    return item.state


def _refunds(ledger: Ledger) -> list[str]:
    with ledger.db.read() as tx:
        rows = tx.all("refunds_in_window", since_ms=0)
    return sorted(str(r["generation_id"]) for r in rows)


def test_one_doorbell_settles_its_row_and_the_other_pending_results(ledger: Ledger) -> None:
    _charge(ledger, 30)
    ids = [_report(ledger, i) for i in range(30)]

    batch = settle_result_batch(ledger, first_id=ids[17], limit=64, policy=POLICY, fresh_ms=0)

    assert set(batch.settled) == set(ids)
    assert {a.settlement for a in batch.settled.values()} == {Settlement.REFUNDED}
    assert all(_state(ledger, i) == "processed" for i in ids)
    assert _refunds(ledger) == sorted(f"g{i}" for i in range(30))
    assert ledger.balance("acct") == 10_000
    assert audit(ledger.db) == []


def test_a_batch_takes_at_most_its_limit(ledger: Ledger) -> None:
    _charge(ledger, 10)
    ids = [_report(ledger, i) for i in range(10)]

    batch = settle_result_batch(ledger, first_id=ids[9], limit=4, policy=POLICY, fresh_ms=0)

    assert len(batch.settled) == 4
    assert ids[9] in batch.settled
    assert sum(_state(ledger, i) == "pending" for i in ids) == 6


def test_an_event_whose_decision_fails_is_left_out_and_the_rest_settle(ledger: Ledger) -> None:
    _charge(ledger, 5)
    good = [_report(ledger, i) for i in range(5)]
    unknown = _report(ledger, 99)  # no charge for g99: ChargeNotFound, retried alone
    broken = _report(ledger, 3, outcome="unclassifiable")

    batch = settle_result_batch(ledger, first_id=unknown, limit=64, policy=POLICY, fresh_ms=0)

    assert set(batch.settled) == set(good)
    assert batch.left_out == {unknown, broken}
    assert (_state(ledger, unknown), _state(ledger, broken)) == ("pending", "pending")
    assert len(_refunds(ledger)) == 5


def test_an_event_failing_inside_the_transaction_is_isolated(ledger: Ledger) -> None:
    _charge(ledger, 4)
    _charge(ledger, 1, with_job=False, first=50)  # g50 charged without its job id
    ids = [_report(ledger, i) for i in range(4)]
    # g50's result names job-2, which g2 holds: found only by the settlement's own check,
    # inside the batch's transaction, after rows settled before it were written.
    thief = _report(ledger, 50, outcome="succeeded", job="job-2")

    batch = settle_result_batch(ledger, first_id=ids[0], limit=64, policy=POLICY, fresh_ms=0)

    assert set(batch.settled) == set(ids)
    assert batch.left_out == {thief}
    assert _state(ledger, thief) == "pending"
    generation = ledger.generation("g50")
    assert generation is not None and generation.outcome is None
    assert _refunds(ledger) == ["g0", "g1", "g2", "g3"]
    assert audit(ledger.db) == []


def test_a_row_in_its_backoff_is_left_to_its_retry(ledger: Ledger) -> None:
    _charge(ledger, 3)
    ids = [_report(ledger, i) for i in range(3)]
    ledger.inbox.defer(ids[2], until_ms=now_ms() + 60_000)

    batch = settle_result_batch(ledger, first_id=ids[0], limit=64, policy=POLICY, fresh_ms=0)

    assert set(batch.settled) == {ids[0], ids[1]}
    assert _state(ledger, ids[2]) == "pending"


def test_a_row_already_settled_is_not_settled_again(ledger: Ledger) -> None:
    _charge(ledger, 2)
    first = _report(ledger, 0)
    settle_result_batch(ledger, first_id=first, limit=64, policy=POLICY, fresh_ms=0)
    again = _report(ledger, 0, outcome="succeeded")  # contradicts the failure applied
    late = _report(ledger, 1, outcome="succeeded")

    batch = settle_result_batch(ledger, first_id=first, limit=64, policy=POLICY, fresh_ms=0)

    assert set(batch.settled) == {again, late}  # not the doorbell's row: already processed
    assert batch.settled[again].settlement is Settlement.CONFLICT
    assert batch.settled[late].settlement is Settlement.KEPT
    assert [r["disposition"] for r in ledger.outcome_reports("g0")] == ["applied", "conflict"]
    assert _refunds(ledger) == ["g0"]


def test_concurrent_batches_refund_each_generation_once(ledger: Ledger) -> None:
    n = 300
    _charge(ledger, n)
    ids = [_report(ledger, i) for i in range(n)]
    doorbells = ids + ids[::7]  # some messages delivered twice

    with ThreadPoolExecutor(max_workers=8) as pool:
        batches = list(
            pool.map(
                lambda i: settle_result_batch(
                    ledger, first_id=i, limit=16, policy=POLICY, fresh_ms=0
                ),
                doorbells,
            )
        )

    settled = [inbox_id for b in batches for inbox_id in b.settled]
    assert sorted(settled) == sorted(ids)  # each row settled by exactly one batch
    assert _refunds(ledger) == sorted(f"g{i}" for i in range(n))
    assert ledger.inbox.counts().get("pending") is None
    assert ledger.balance("acct") == 10_000
    assert audit(ledger.db) == []


def test_rows_just_enqueued_are_left_to_their_own_messages(ledger: Ledger) -> None:
    _charge(ledger, 3)
    ids = [_report(ledger, i) for i in range(3)]

    batch = settle_result_batch(ledger, first_id=ids[1], limit=64, policy=POLICY)

    assert set(batch.settled) == {ids[1]}  # the doorbell's own row, fresh or not
    assert (_state(ledger, ids[0]), _state(ledger, ids[2])) == ("pending", "pending")
