"""Property: whatever the sequence of grants (of every kind), charges (debit or hold),
outcomes (refunded or kept, told again), cancellations and expiry sweeps, each lot's
remaining and held credits, the balance and the held total match a model of the documented
rules, and the audit finds nothing. The model is written out here from the rules (the
consumption order, refunds back to their lots, holds, expiry); it calls no Refundry code.

``REFUNDRY_STATEFUL_EXAMPLES`` and ``REFUNDRY_STATEFUL_STEPS`` make it run longer (README,
"Longer property runs")."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import Ledger, Outcome, audit
from ledger.errors import InsufficientCredits
from ledger.lots import PACK, PROMO, LotTerms
from tests.support.stateful import examples_and_steps

DAY = 86_400_000
FAR = 4_102_444_800_000  # 2100: no wall clock reaches an expiry in this test
CANCELLED_AT = (1_900_000_000_000, 1_950_000_000_000)  # 2030, 2031
SWEEP_AT = (1_905_000_000_000, 1_960_000_000_000, FAR + DAY, FAR + 10 * DAY)
EXAMPLES, STEPS = examples_and_steps(25, 18)

grant = st.tuples(
    st.just("grant"),
    st.sampled_from(["pack", "promo", "cycle", "sub"]),
    st.integers(1, 30),
    st.integers(0, 3),
)
charge = st.tuples(st.just("charge"), st.integers(1, 40), st.sampled_from(["debit", "hold"]))
settle = st.tuples(st.just("settle"), st.integers(0, 9), st.booleans())
cancel = st.tuples(st.just("cancel"), st.sampled_from(CANCELLED_AT))
sweep = st.tuples(st.just("expire"), st.sampled_from(SWEEP_AT))
operations = st.lists(st.one_of(grant, charge, settle, cancel, sweep), min_size=1, max_size=STEPS)


@dataclass
class Lot:
    kind: str
    rule: str  # never | cycle_end | after_cancellation
    expires: int | None
    remaining: int = 0
    held: int = 0


@dataclass
class Charge:
    credits: int
    mode: str
    parts: list[tuple[str, int]]
    settled: bool = False


@dataclass
class Model:
    """The documented rules, restated: nothing here comes from Refundry."""

    lots: dict[str, Lot] = field(default_factory=dict)
    charges: list[Charge] = field(default_factory=list)
    balance: int = 0
    held: int = 0

    def order(self, lot_id: str) -> tuple[int, int, str]:
        lot = self.lots[lot_id]
        rank = 0 if lot.expires is not None else 1 if lot.rule == "after_cancellation" else 2
        return (rank, lot.expires or 0, lot_id)  # lot ids grow with their grant time

    def charge(self, credits: int, mode: str) -> bool:
        if credits > self.balance - self.held:
            return False
        parts, left = [], credits
        for lot_id in sorted(self.lots, key=self.order):
            lot = self.lots[lot_id]
            part = min(left, lot.remaining - lot.held)
            if part > 0:
                parts.append((lot_id, part))
                left -= part
                if mode == "debit":
                    lot.remaining -= part
                else:
                    lot.held += part
        assert left == 0
        if mode == "debit":
            self.balance -= credits
        else:
            self.held += credits
        self.charges.append(Charge(credits, mode, parts))
        return True

    def settle(self, c: Charge, refund: bool) -> None:
        if c.settled:
            return
        c.settled = True
        for lot_id, part in c.parts:
            lot = self.lots[lot_id]
            if c.mode == "hold":
                lot.held -= part
            if c.mode == "hold" and not refund:
                lot.remaining -= part
            if c.mode == "debit" and refund:
                lot.remaining += part
        if c.mode == "hold":
            self.held -= c.credits
            self.balance -= 0 if refund else c.credits
        elif refund:
            self.balance += c.credits

    def cancel(self, at: int) -> None:
        for lot in self.lots.values():
            if lot.rule == "after_cancellation" and (
                lot.expires is None or lot.expires > at + 60 * DAY
            ):
                lot.expires = at + 60 * DAY

    def expire(self, at: int) -> None:
        for lot in self.lots.values():
            if lot.expires is not None and lot.expires <= at and lot.remaining > lot.held:
                self.balance -= lot.remaining - lot.held
                lot.remaining = lot.held


def _terms(kind: str, cycle: int, subscription: str) -> tuple[LotTerms, Lot]:
    if kind == "pack":
        return PACK, Lot("pack", "never", None)
    if kind == "promo":
        return PROMO, Lot("promo", "never", None)
    if kind == "cycle":
        ends = FAR + cycle * DAY
        return LotTerms("subscription", "cycle_end", expires_at_ms=ends), Lot(
            "subscription", "cycle_end", ends
        )
    terms = LotTerms(
        "subscription",
        "after_cancellation",
        after_cancellation_ms=60 * DAY,
        subscription_id=subscription,
    )
    return terms, Lot("subscription", "after_cancellation", None)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_lots_and_balances_follow_the_documented_rules(
    ledger: Ledger, ops: list[tuple[Any, ...]]
) -> None:
    run = uuid.uuid4().hex[:10]  # each example in its own account and subscription
    account, subscription = f"acct-{run}", f"sub-{run}"
    model = Model()
    for step, op in enumerate(ops):
        if op[0] == "grant":
            _, kind, credits, cycle = op
            terms, lot = _terms(kind, cycle, subscription)
            key = f"{run}-{step:03d}"
            ledger.grant(
                account_id=account,
                credits=credits,
                idempotency_key=key,
                reason="t",
                terms=terms,
            )
            lot.remaining = credits
            model.lots[f"grant:{key}"] = lot
            model.balance += lot.remaining
        elif op[0] == "charge":
            _, credits, mode = op
            gen = f"{run}-g{len(model.charges)}"
            expected = model.charge(credits, mode)
            try:
                ledger.charge(
                    generation_id=gen,
                    account_id=account,
                    provider="fal",
                    operation="video",
                    credits=credits,
                    mode=mode,
                )
                charged = True
            except InsufficientCredits:
                charged = False
            assert charged is expected
        elif op[0] == "settle" and model.charges:
            _, index, refund = op
            n = index % len(model.charges)
            ledger.settle(
                generation_id=f"{run}-g{n}",
                outcome=Outcome.FAILED if refund else Outcome.SUCCEEDED,
                reason="r",
                refund=refund,
                failure_known_at_ms=1,
            )
            model.settle(model.charges[n], refund)
        elif op[0] == "cancel":
            ledger.subscriptions.record_cancellation(
                subscription_id=subscription,
                customer=f"cus-{run}",
                cancelled_at_ms=op[1],
            )
            model.cancel(op[1])
        elif op[0] == "expire":
            ledger.expire_due(at_ms=op[1])
            model.expire(op[1])
        lots = {
            str(r["lot_id"]): (int(r["remaining"]), int(r["held"])) for r in ledger.lots(account)
        }
        assert lots == {i: (lot.remaining, lot.held) for i, lot in model.lots.items()}, op
        funds = ledger.funds(account)
        assert (funds.balance, funds.held) == (model.balance, model.held), op
    assert audit(ledger.db) == []
