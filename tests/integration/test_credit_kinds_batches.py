"""Holds and lots settled in batches (SQLite and PostgreSQL): concurrent batches over two
accounts' held and debited generations, succeeded and failed, capture or void each hold
once, give each refund back to its lots, and leave every balance, held total and kind as
the audit proves them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from handlers.generation import RefundPolicy
from handlers.intake import new_event
from handlers.result_batches import settle_result_batch
from ledger import Ledger, audit
from ledger.lots import PACK
from tests.support.credit_lots import after_cancellation
from workers.demo_payloads import demo_payload

POLICY = RefundPolicy()
ACCOUNTS = ("acct_a", "acct_b")
N = 24  # generations; even ones succeed, odd ones fail


def test_concurrent_batches_capture_or_void_each_hold_once(ledger: Ledger) -> None:
    for acct in ACCOUNTS:
        ledger.grant(
            account_id=acct, credits=100, idempotency_key=f"{acct}-p", reason="p", terms=PACK
        )
        terms = after_cancellation(f"sub-{acct}")
        ledger.grant(
            account_id=acct, credits=60, idempotency_key=f"{acct}-s", reason="s", terms=terms
        )
    ids = []
    for i in range(N):
        acct = ACCOUNTS[i % 4 // 2]  # g0 g1 on a, g2 g3 on b, ...
        ledger.charge(
            generation_id=f"g{i}",
            account_id=acct,
            provider="kling",
            operation="video",
            credits=10,
            provider_job_id=f"job-{i}",
            mode="hold" if i % 3 else "debit",
        )
        outcome = "succeeded" if i % 2 == 0 else "failed"
        payload = demo_payload("kling", f"job-{i}", outcome)
        event = new_event(kind="result", provider="kling", payload=payload, generation_id=f"g{i}")
        [recorded] = ledger.inbox.record_many([event])
        ids.append(recorded.id)

    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda first: settle_result_batch(
                    ledger, first_id=first, limit=5, policy=POLICY, fresh_ms=0
                ),
                ids,
            )
        )

    assert all(ledger.inbox.get(i).state == "processed" for i in ids)  # type: ignore[union-attr]
    for acct in ACCOUNTS:
        mine = [i for i in range(N) if ACCOUNTS[i % 4 // 2] == acct]  # in charge order
        # each charged 10: the first 6 from the subscription's 60 (they may expire), the
        # rest from the pack; the failed ones gave back to the kind they came from
        spent = {"subscription": 0, "pack": 0}
        for order, i in enumerate(mine):
            if i % 2 == 0:
                spent["subscription" if order < 6 else "pack"] += 10
        funds = ledger.funds(acct)
        assert (funds.balance, funds.held) == (160 - sum(spent.values()), 0)
        assert funds.kinds == {
            "pack": (100 - spent["pack"], 0),
            "subscription": (60 - spent["subscription"], 0),
        }
    assert audit(ledger.db) == []
