"""Credit kinds, expiry and holds on SQLite and PostgreSQL: the consumption order, refunds
back to their lots, the expiry sweep's idempotency, the hold's capture, void and deadline,
and the audit of balances per kind."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from ledger import Ledger, Outcome, Settlement, audit, now_ms
from ledger.errors import IdempotencyConflict, InsufficientCredits, InvalidInput, InvalidLotTerms
from ledger.lots import PACK, LotTerms
from tests.support.credit_lots import DAY_MS, FAR, after_cancellation, charge, cycle, lots_of
from tests.support.stuck import MINUTE, sweep_at


def _three_kinds(ledger: Ledger) -> None:
    """10 pack credits (never expire), 10 that expire 60 days after sub_1's cancellation,
    10 at the end of a cycle, granted in that order."""
    ledger.grant(account_id="a", credits=10, idempotency_key="p", reason="pack", terms=PACK)
    ledger.grant(
        account_id="a",
        credits=10,
        idempotency_key="s",
        reason="sub",
        terms=after_cancellation("sub_1"),
    )
    ledger.grant(account_id="a", credits=10, idempotency_key="c", reason="cycle", terms=cycle())


def _fail(ledger: Ledger, gen: str) -> Settlement:
    return ledger.settle(
        generation_id=gen, outcome=Outcome.FAILED, reason="boom", refund=True, failure_known_at_ms=1
    )


def _succeed(ledger: Ledger, gen: str) -> Settlement:
    return ledger.settle(
        generation_id=gen,
        outcome=Outcome.SUCCEEDED,
        reason="ok",
        refund=False,
        failure_known_at_ms=1,
    )


def test_a_charge_spends_the_soonest_to_expire_first_and_never_expiring_last(
    ledger: Ledger,
) -> None:
    _three_kinds(ledger)
    charge(ledger, "g1", 15)
    assert lots_of(ledger) == {"grant:p": (10, 0), "grant:s": (5, 0), "grant:c": (0, 0)}
    charge(ledger, "g2", 8)
    assert lots_of(ledger) == {"grant:p": (7, 0), "grant:s": (0, 0), "grant:c": (0, 0)}
    funds = ledger.funds("a")
    assert (funds.balance, funds.held, funds.kinds) == (
        7,
        0,
        {"pack": (7, 0), "subscription": (0, 0)},
    )
    assert audit(ledger.db) == []


def test_a_refund_gives_back_to_the_lots_its_charge_took_from(ledger: Ledger) -> None:
    _three_kinds(ledger)
    charge(ledger, "g1", 15)  # cycle 10, subscription 5
    charge(ledger, "g2", 8)  # subscription 5, pack 3
    assert _fail(ledger, "g1") is Settlement.REFUNDED
    assert lots_of(ledger) == {"grant:p": (7, 0), "grant:s": (5, 0), "grant:c": (10, 0)}
    assert _fail(ledger, "g1") is Settlement.DUPLICATE  # redelivered: nothing moves twice
    assert lots_of(ledger)["grant:c"] == (10, 0)
    assert ledger.funds("a").kinds == {"pack": (7, 0), "subscription": (15, 0)}
    assert audit(ledger.db) == []


def test_expiry_is_one_entry_per_lot_whoever_sweeps_and_however_often(ledger: Ledger) -> None:
    ends = now_ms() + DAY_MS
    ledger.grant(account_id="a", credits=10, idempotency_key="c", reason="cycle", terms=cycle(ends))
    ledger.grant(account_id="a", credits=4, idempotency_key="p", reason="pack", terms=PACK)
    assert ledger.expire_due(at_ms=ends - 1).lots == 0  # not due yet
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: ledger.expire_due(at_ms=ends), range(8)))
    assert sum(r.lots for r in runs) == 1 and sum(r.credits for r in runs) == 10
    assert ledger.expire_due(at_ms=ends + 1).lots == 0  # the sweep again: nothing left
    assert ledger.funds("a").kinds == {"pack": (4, 0), "subscription": (0, 0)}
    assert ledger.balance("a") == 4
    with ledger.db.read() as tx:
        expiries = tx.all("lot_moves_of", entry_key=f"expiry:grant:c:{ends}:0")
    assert [(r["lot_id"], r["amount"]) for r in expiries] == [("grant:c", -10)]
    assert audit(ledger.db) == []


def test_credits_refunded_into_a_lot_past_its_expiry_are_written_off_again(ledger: Ledger) -> None:
    ends = now_ms() + 2_000
    ledger.grant(account_id="a", credits=10, idempotency_key="c", reason="cycle", terms=cycle(ends))
    ledger.grant(account_id="a", credits=10, idempotency_key="p", reason="pack", terms=PACK)
    charge(ledger, "g1", 6)  # from the cycle's lot
    assert ledger.expire_due(at_ms=ends).credits == 4
    _fail(ledger, "g1")
    assert lots_of(ledger)["grant:c"] == (6, 0)  # back to its lot ...
    second = ledger.expire_due(at_ms=ends + 1)  # ... which has expired: written off, once
    assert (second.lots, second.credits) == (1, 6)
    assert ledger.expire_due(at_ms=ends + 2).lots == 0
    assert ledger.funds("a").kinds == {"pack": (10, 0), "subscription": (0, 0)}
    assert audit(ledger.db) == []


def test_cancellation_starts_the_clock_of_after_cancellation_credits_only(ledger: Ledger) -> None:
    _three_kinds(ledger)
    cancelled = 1_800_000_000_000
    ledger.subscriptions.record_cancellation(
        subscription_id="sub_1", customer="cus_1", cancelled_at_ms=cancelled
    )
    ledger.subscriptions.record_cancellation(  # told again, later: the earliest time stays
        subscription_id="sub_1", customer="cus_1", cancelled_at_ms=cancelled + DAY_MS
    )
    expiry = {str(r["lot_id"]): r["expires_at_ms"] for r in ledger.lots("a")}
    assert expiry == {"grant:p": None, "grant:s": cancelled + 60 * DAY_MS, "grant:c": FAR}


def test_a_hold_shows_credits_held_and_a_success_captures_them(ledger: Ledger) -> None:
    _three_kinds(ledger)
    assert charge(ledger, "g1", 12, mode="hold") == 18  # the credits left to spend
    funds = ledger.funds("a")
    assert (funds.balance, funds.held, funds.available) == (30, 12, 18)
    assert lots_of(ledger) == {"grant:p": (10, 0), "grant:s": (10, 2), "grant:c": (10, 10)}
    assert ledger.generation("g1") is not None
    assert audit(ledger.db) == []  # a pending hold has no charge entry yet, rightly
    assert _succeed(ledger, "g1") is Settlement.KEPT
    funds = ledger.funds("a")
    assert (funds.balance, funds.held) == (18, 0)
    assert lots_of(ledger) == {"grant:p": (10, 0), "grant:s": (8, 0), "grant:c": (0, 0)}
    assert _succeed(ledger, "g1") is Settlement.DUPLICATE
    assert ledger.balance("a") == 18
    assert audit(ledger.db) == []


def test_a_refunded_outcome_voids_the_hold_and_nothing_is_charged(ledger: Ledger) -> None:
    _three_kinds(ledger)
    charge(ledger, "g1", 12, mode="hold")
    moderated = ledger.settle(
        generation_id="g1",
        outcome=Outcome.MODERATED,
        reason="policy",
        refund=True,
        failure_known_at_ms=1,
    )
    assert moderated is Settlement.REFUNDED
    funds = ledger.funds("a")
    assert (funds.balance, funds.held) == (30, 0)
    assert lots_of(ledger) == {"grant:p": (10, 0), "grant:s": (10, 0), "grant:c": (10, 0)}
    with ledger.db.read() as tx:
        assert tx.one("entry_by_key", idempotency_key="charge:g1") is None
        assert tx.one("entry_by_key", idempotency_key="refund:g1") is None
        assert tx.one("hold_of", generation_id="g1")["state"] == "voided"  # type: ignore[index]
    assert _succeed(ledger, "g1") is Settlement.CONFLICT  # a later success is never applied
    assert ledger.funds("a").held == 0 and ledger.balance("a") == 30
    assert audit(ledger.db) == []


def test_a_hold_past_its_hard_deadline_is_voided_by_the_stuck_sweep(ledger: Ledger) -> None:
    ledger.grant(account_id="a", credits=50, idempotency_key="top", reason="t")
    ledger.charge(
        generation_id="g1",
        account_id="a",
        provider="fal",
        operation="video",
        credits=20,
        provider_job_id="job-g1",
        poll_after_ms=10 * MINUTE,
        deadline_after_ms=45 * MINUTE,
        mode="hold",
    )
    gen = ledger.generation("g1")
    assert gen is not None and ledger.funds("a").held == 20
    result = sweep_at(ledger, {}, gen.charged_at_ms + 45 * MINUTE)
    assert result.refunded_as_lost == 1
    funds = ledger.funds("a")
    assert (funds.balance, funds.held, funds.available) == (50, 0, 50)
    assert audit(ledger.db) == []


def test_held_credits_cannot_be_spent_twice(ledger: Ledger) -> None:
    ledger.grant(account_id="a", credits=10, idempotency_key="top", reason="t")
    charge(ledger, "g1", 8, mode="hold")
    with pytest.raises(InsufficientCredits):
        charge(ledger, "g2", 5)
    with pytest.raises(InsufficientCredits):
        charge(ledger, "g3", 5, mode="hold")
    assert charge(ledger, "g4", 2) == 0
    assert ledger.generation("g2") is None and ledger.generation("g3") is None
    funds = ledger.funds("a")
    assert (funds.balance, funds.held) == (8, 8)
    assert audit(ledger.db) == []


def test_held_credits_are_not_written_off_until_their_hold_is_voided(ledger: Ledger) -> None:
    ends = now_ms() + 2_000
    ledger.grant(account_id="a", credits=10, idempotency_key="c", reason="cycle", terms=cycle(ends))
    charge(ledger, "g1", 4, mode="hold")
    assert ledger.expire_due(at_ms=ends).credits == 6
    assert lots_of(ledger)["grant:c"] == (4, 4)
    _fail(ledger, "g1")  # voided: back to a lot past its expiry ...
    assert ledger.expire_due(at_ms=ends + 1).credits == 4  # ... written off by the next sweep
    assert ledger.balance("a") == 0
    assert audit(ledger.db) == []


def test_credits_past_their_expiry_are_not_spent_before_the_sweep(ledger: Ledger) -> None:
    past = now_ms() - 1
    ledger.grant(account_id="a", credits=10, idempotency_key="c", reason="cycle", terms=cycle(past))
    with pytest.raises(InsufficientCredits):
        charge(ledger, "g1", 5)
    assert ledger.generation("g1") is None and ledger.balance("a") == 10


def test_the_audit_catches_a_tampered_balance_of_one_kind(ledger: Ledger) -> None:
    _three_kinds(ledger)
    charge(ledger, "g1", 15)
    with ledger.db.write() as tx:  # the account's balance still agrees with its entries
        tx.all("adjust_lot", lot_id="grant:p", remaining=5, held=0)
        tx.all("adjust_lot", lot_id="grant:s", remaining=-5, held=0)
    found = audit(ledger.db)
    assert [v.check for v in found] == ["kind_balance_mismatch", "kind_balance_mismatch"]
    assert {v.detail["credit_kind"] for v in found} == {"pack", "subscription"}


def test_the_audit_catches_held_credits_no_hold_explains(ledger: Ledger) -> None:
    ledger.grant(account_id="a", credits=10, idempotency_key="top", reason="t")
    charge(ledger, "g1", 4, mode="hold")
    with ledger.db.write() as tx:
        tx.all("adjust_account", account_id="a", balance=0, held=1, now_ms=1)
    [violation] = audit(ledger.db)
    assert (violation.invariant, violation.check) == (7, "held_mismatch")


def test_bad_terms_and_modes_are_refused_and_store_nothing(ledger: Ledger) -> None:
    with pytest.raises(InvalidLotTerms):
        LotTerms("subscription", "cycle_end")  # no cycle end given
    with pytest.raises(InvalidLotTerms):
        LotTerms("Sub scription")
    ledger.grant(account_id="a", credits=10, idempotency_key="top", reason="t")
    with pytest.raises(InvalidInput):
        charge(ledger, "g1", 4, mode="later")
    assert ledger.generation("g1") is None and ledger.funds("a").held == 0


def test_a_grant_replayed_as_another_kind_is_refused(ledger: Ledger) -> None:
    ledger.grant(account_id="a", credits=10, idempotency_key="k", reason="t", terms=PACK)
    assert (
        ledger.grant(account_id="a", credits=10, idempotency_key="k", reason="t", terms=PACK) == 10
    )
    with pytest.raises(IdempotencyConflict):
        ledger.grant(account_id="a", credits=10, idempotency_key="k", reason="t")
    assert ledger.funds("a").kinds == {"pack": (10, 0)}


def test_a_charge_replayed_returns_what_is_left_to_spend_as_the_first_call_did(
    ledger: Ledger,
) -> None:
    ledger.grant(account_id="a", credits=10, idempotency_key="top", reason="t")
    first = charge(ledger, "g1", 4, mode="hold")
    assert charge(ledger, "g1", 4, mode="hold") == first == 6
    assert charge(ledger, "g2", 1) == charge(ledger, "g2", 1) == 5


def test_concurrent_charges_and_sweeps_never_spend_a_lot_twice(ledger: Ledger) -> None:
    ends = now_ms() + 60_000
    ledger.grant(account_id="a", credits=10, idempotency_key="p", reason="pack", terms=PACK)
    ledger.grant(account_id="a", credits=10, idempotency_key="c", reason="cycle", terms=cycle(ends))
    ledger.grant(
        account_id="a", credits=10, idempotency_key="s", reason="sub", terms=after_cancellation("x")
    )

    def attempt(i: int) -> tuple[str, int]:
        if i % 4 == 3:
            return "expired", ledger.expire_due(at_ms=ends).credits
        mode = "hold" if i % 2 else "debit"
        try:
            charge(ledger, f"g{i}", 3, mode=mode)
        except InsufficientCredits:
            return "refused", 0
        return mode, 3

    with ThreadPoolExecutor(6) as pool:
        done = list(pool.map(attempt, range(16)))
    moved = {what: sum(n for w, n in done if w == what) for what in ("debit", "hold", "expired")}
    funds = ledger.funds("a")
    assert funds.balance == 30 - moved["debit"] - moved["expired"]
    assert funds.held == moved["hold"]
    left = sum(remaining - held for remaining, held in lots_of(ledger).values())
    assert funds.available == left >= 0
    assert audit(ledger.db) == []
