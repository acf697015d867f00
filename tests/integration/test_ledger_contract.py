"""The ledger's contract, run unchanged on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from ledger import Ledger, Outcome, Settlement, audit, now_ms, open_database
from ledger.errors import (
    ChargeNotFound,
    IdempotencyConflict,
    InsufficientCredits,
    LedgerError,
)


def _charged(ledger: Ledger, gen: str = "g1", credits: int = 30, top_up: int = 100) -> None:
    ledger.grant(account_id="acct", credits=top_up, idempotency_key=f"top-{gen}", reason="t")
    ledger.charge(
        generation_id=gen,
        account_id="acct",
        provider="fal",
        operation="video",
        credits=credits,
        provider_job_id=f"job-{gen}",
    )


def test_grant_is_applied_once_per_key(ledger: Ledger) -> None:
    assert ledger.grant(account_id="a", credits=50, idempotency_key="k", reason="pack") == 50
    assert ledger.grant(account_id="a", credits=50, idempotency_key="k", reason="pack") == 50
    assert ledger.balance("a") == 50


def test_grant_key_reused_with_another_amount_is_refused(ledger: Ledger) -> None:
    ledger.grant(account_id="a", credits=50, idempotency_key="k", reason="pack")
    with pytest.raises(IdempotencyConflict):
        ledger.grant(account_id="a", credits=60, idempotency_key="k", reason="pack")
    assert ledger.balance("a") == 50


def test_charge_debits_once_per_generation(ledger: Ledger) -> None:
    _charged(ledger)
    again = ledger.charge(
        generation_id="g1",
        account_id="acct",
        provider="fal",
        operation="video",
        credits=30,
        provider_job_id="job-g1",
    )
    assert again == 70
    assert ledger.balance("acct") == 70


def test_charge_replayed_with_other_inputs_is_refused(ledger: Ledger) -> None:
    _charged(ledger)
    with pytest.raises(IdempotencyConflict):
        ledger.charge(
            generation_id="g1",
            account_id="acct",
            provider="fal",
            operation="video",
            credits=31,
            provider_job_id="job-g1",
        )
    assert ledger.balance("acct") == 70


def test_charge_never_overdraws_and_leaves_nothing_behind(ledger: Ledger) -> None:
    ledger.grant(account_id="a", credits=10, idempotency_key="k", reason="t")
    with pytest.raises(InsufficientCredits) as caught:
        ledger.charge(
            generation_id="g", account_id="a", provider="fal", operation="video", credits=11
        )
    assert caught.value.fields["balance"] == 10
    assert ledger.balance("a") == 10
    assert ledger.generation("g") is None
    assert audit(ledger.db) == []


def test_failed_outcome_refunds_exactly_the_charge_once(ledger: Ledger) -> None:
    _charged(ledger)
    first = ledger.settle(
        generation_id="g1",
        outcome=Outcome.FAILED,
        reason="error",
        refund=True,
        failure_known_at_ms=1,
    )
    again = ledger.settle(
        generation_id="g1",
        outcome=Outcome.FAILED,
        reason="error",
        refund=True,
        failure_known_at_ms=1,
    )
    assert (first, again) == (Settlement.REFUNDED, Settlement.DUPLICATE)
    assert ledger.balance("acct") == 100
    assert audit(ledger.db) == []


def test_success_first_then_failure_is_a_conflict_never_a_refund(ledger: Ledger) -> None:
    _charged(ledger)
    assert (
        ledger.settle(
            generation_id="g1",
            outcome=Outcome.SUCCEEDED,
            reason="ok",
            refund=False,
            failure_known_at_ms=1,
        )
        is Settlement.KEPT
    )
    assert (
        ledger.settle(
            generation_id="g1",
            outcome=Outcome.FAILED,
            reason="late",
            refund=True,
            failure_known_at_ms=2,
        )
        is Settlement.CONFLICT
    )
    assert ledger.balance("acct") == 70
    reports = {r["outcome"]: r["disposition"] for r in ledger.outcome_reports("g1")}
    assert reports == {"succeeded": "applied", "failed": "conflict"}


def test_failure_first_then_success_keeps_the_refund(ledger: Ledger) -> None:
    _charged(ledger)
    ledger.settle(
        generation_id="g1",
        outcome=Outcome.MODERATED,
        reason="policy",
        refund=True,
        failure_known_at_ms=1,
    )
    assert (
        ledger.settle(
            generation_id="g1",
            outcome=Outcome.SUCCEEDED,
            reason="ok",
            refund=False,
            failure_known_at_ms=2,
        )
        is Settlement.CONFLICT
    )
    assert ledger.balance("acct") == 100
    gen = ledger.generation("g1")
    assert gen is not None and gen.outcome is Outcome.MODERATED


def test_pending_changes_nothing(ledger: Ledger) -> None:
    _charged(ledger)
    assert (
        ledger.settle(
            generation_id="g1",
            outcome=Outcome.PENDING,
            reason="queued",
            refund=False,
            failure_known_at_ms=1,
        )
        is Settlement.PENDING
    )
    gen = ledger.generation("g1")
    assert gen is not None and gen.outcome is None
    assert ledger.balance("acct") == 70


def test_no_refund_without_a_charge(ledger: Ledger) -> None:
    with pytest.raises(ChargeNotFound):
        ledger.settle(
            generation_id="forged",
            outcome=Outcome.FAILED,
            reason="x",
            refund=True,
            failure_known_at_ms=1,
        )
    assert ledger.balance("acct") == 0
    assert audit(ledger.db) == []


def _settle(ledger: Ledger, outcome: Outcome, refund: bool) -> Settlement:
    return ledger.settle(
        generation_id="g1", outcome=outcome, reason="r", refund=refund, failure_known_at_ms=1
    )


def test_a_refund_is_exactly_the_charge_once_however_often_it_is_settled(ledger: Ledger) -> None:
    _charged(ledger)
    assert _settle(ledger, Outcome.FAILED, True) is Settlement.REFUNDED
    assert _settle(ledger, Outcome.FAILED, True) is Settlement.DUPLICATE
    assert ledger.balance("acct") == 100
    assert audit(ledger.db) == []


def test_a_succeeded_generation_is_never_refunded(ledger: Ledger) -> None:
    _charged(ledger)
    assert _settle(ledger, Outcome.SUCCEEDED, False) is Settlement.KEPT
    with pytest.raises(LedgerError):
        _settle(ledger, Outcome.SUCCEEDED, True)
    assert _settle(ledger, Outcome.FAILED, True) is Settlement.CONFLICT
    assert ledger.balance("acct") == 70


def test_no_refund_bypasses_the_outcome_it_rests_on(ledger: Ledger) -> None:
    """Every refund is written by ``settle`` with the outcome that justifies it, so a later
    success finds that outcome and is a conflict, never applied on top (invariant 3)."""
    assert not hasattr(Ledger, "refund"), "a refund outside an outcome is not offered"
    _charged(ledger)
    assert _settle(ledger, Outcome.FAILED, True) is Settlement.REFUNDED
    assert _settle(ledger, Outcome.SUCCEEDED, False) is Settlement.CONFLICT
    generation = ledger.generation("g1")
    assert generation is not None and generation.outcome is Outcome.FAILED
    assert ledger.balance("acct") == 100
    assert audit(ledger.db) == []


def test_refund_records_when_the_failure_was_known_and_applied(ledger: Ledger) -> None:
    _charged(ledger)
    known = now_ms() - 5_000  # the failure became known five seconds ago
    before = now_ms()
    ledger.settle(
        generation_id="g1",
        outcome=Outcome.FAILED,
        reason="e",
        refund=True,
        failure_known_at_ms=known,
    )
    after = now_ms()
    [latency] = ledger.refund_latencies_ms()
    assert before - known <= latency <= after - known  # applied during settle(), not before


def test_concurrent_settlements_refund_once(ledger: Ledger) -> None:
    _charged(ledger)
    results: list[Settlement] = []
    errors: list[BaseException] = []

    def settle() -> None:
        try:
            results.append(
                ledger.settle(
                    generation_id="g1",
                    outcome=Outcome.FAILED,
                    reason="e",
                    refund=True,
                    failure_known_at_ms=1,
                )
            )
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=settle) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sorted(results) == sorted([Settlement.REFUNDED] + [Settlement.DUPLICATE] * 7)
    assert ledger.balance("acct") == 100
    assert audit(ledger.db) == []


def test_migrations_race_safely_on_an_empty_database(ledger_url: str) -> None:
    from ledger import migrate
    from ledger.queries import migrations

    applied: list[list[str]] = []
    errors: list[BaseException] = []

    def open_and_migrate() -> None:
        db = open_database(ledger_url)
        try:
            applied.append(migrate(db))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=open_and_migrate) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    dialect = "postgresql" if ledger_url.startswith("postgresql") else "sqlite"
    every = len(migrations(dialect))
    assert sorted(len(a) for a in applied) == [0, 0, 0, 0, 0, every]


def test_audit_reports_a_balance_that_disagrees_with_its_entries(ledger: Ledger) -> None:
    _charged(ledger)
    with ledger.db.write() as tx:
        tx.all("upsert_account_credit", account_id="acct", amount=5, now_ms=1)
    [violation] = audit(ledger.db)
    assert violation.invariant == 5
    assert violation.detail["account_id"] == "acct"
