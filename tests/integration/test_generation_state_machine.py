"""A stateful property of generations: charges, results of every outcome reported one to
three times and contradicted, messages delivered, lost or redelivered in any order, inbox
and stuck sweeps interleaved. After every step the ledger audit is clean and every balance
equals a plain model's; at the end, once everything owed is delivered, every generation
ends as the model says.

The model knows only the rules (the first terminal outcome wins; failed, empty, moderated
and cancelled results give the charge back; past its hard deadline an unsettled generation
is refunded as lost); it calls none of Refundry's code. Runs on SQLite and PostgreSQL, each
example in a fresh database (a new file, or a new schema). ``REFUNDRY_STATEFUL_EXAMPLES``
and ``REFUNDRY_STATEFUL_STEPS`` make the run longer (see README).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from handlers.generation import RefundPolicy, apply_result
from ledger import Ledger, audit, now_ms
from providers.deliveries import delivery_key
from tests.support.stateful import examples_and_steps, inbox_ids, run_machine, sweep_onto
from tests.support.stuck import MINUTE, sweep_at
from workers.demo_payloads import DEMO_OUTCOMES, demo_payload

EXAMPLES, STEPS = examples_and_steps(12, 25)
TOP_UP = 10_000

# The model's own rules, written out, not imported.
MODEL_TERMINAL = {"succeeded", "failed", "empty_success", "moderated", "cancelled"}
MODEL_REFUNDS = {"failed", "empty_success", "moderated", "cancelled"}


class Generations(RuleBasedStateMachine):
    """One example: a fresh ledger, one account, generations on fal and Kling."""

    open_fresh_ledger: Callable[[], Ledger]
    ran: ClassVar[dict[str, int]] = {"examples": 0, "steps": 0}

    def __init__(self) -> None:
        super().__init__()
        self.ran["examples"] += 1
        self.ledger = type(self).open_fresh_ledger()
        self.ledger.grant(account_id="acct", credits=TOP_UP, idempotency_key="top", reason="t")
        self.charged: dict[str, int] = {}
        self.provider: dict[str, str] = {}
        self.first: dict[str, str] = {}  # the model: each generation's first applied terminal
        self.queue: list[str] = []  # the broker's messages (inbox ids), in no promised order
        self.inbox_ids = inbox_ids()
        self.reported: dict[str, list[str]] = {}  # every terminal outcome reported
        self.kept: dict[str, tuple[str, str]] = {}  # inbox rows not applied: id → (gen, outcome)

    generations = Bundle("generations")

    @rule(
        target=generations,
        provider=st.sampled_from(sorted(DEMO_OUTCOMES)),
        credits=st.integers(1, 90),
    )
    def charge(self, provider: str, credits: int) -> str:
        gen = f"g{len(self.charged)}"
        self.ledger.charge(
            generation_id=gen,
            account_id="acct",
            provider=provider,
            operation="video",
            credits=credits,
            provider_job_id=f"job{gen}",
        )
        self.charged[gen] = credits
        self.provider[gen] = provider
        return gen

    @rule(gen=generations, data=st.data(), copies=st.integers(1, 3), by_id=st.booleans())
    def report(self, gen: str, data: st.DataObject, copies: int, by_id: bool) -> None:
        provider = self.provider[gen]
        outcome = data.draw(st.sampled_from([*DEMO_OUTCOMES[provider], "pending"]))
        payload = demo_payload(provider, f"job{gen}", outcome)
        if outcome in MODEL_TERMINAL:
            self.reported.setdefault(gen, []).append(outcome)
        for _ in range(copies):
            recorded = self.ledger.inbox.record(
                id=next(self.inbox_ids),
                kind="result",
                provider=provider,
                payload=payload,
                generation_id=gen if by_id else None,
                delivery_key=delivery_key(provider, payload),
            )
            if recorded.new:
                self.queue.append(recorded.id)
                self.kept[recorded.id] = (gen, outcome)

    @precondition(lambda self: self.queue)
    @rule(data=st.data(), lose=st.booleans())
    def deliver(self, data: st.DataObject, lose: bool) -> None:
        """A worker takes any waiting message; or the broker loses it."""
        inbox_id = self.queue.pop(data.draw(st.integers(0, len(self.queue) - 1)))
        if not lose:
            self._process(inbox_id)

    @rule()
    def inbox_sweep(self) -> None:
        sweep_onto(self.ledger, self.queue, give_up_ms=60 * MINUTE)

    @rule()
    def stuck_sweep_past_every_deadline(self) -> None:
        """Every generation past its hard deadline, every result kept before it: a kept
        result not yet applied is applied (oldest first, up to the first terminal one);
        a generation with none is lost, refunded as a system failure."""
        sweep_at(self.ledger, {}, now_ms() + 46 * MINUTE)
        for gen in self.charged:
            if gen in self.first:
                continue
            for inbox_id in sorted(i for i, (g, _) in self.kept.items() if g == gen):
                outcome = self.kept.pop(inbox_id)[1]
                if outcome in MODEL_TERMINAL:
                    self.first[gen] = outcome
                    break
            self.first.setdefault(gen, "failed")

    def _process(self, inbox_id: str) -> None:
        """What the results actor does with one message."""
        item = self.ledger.inbox.get(inbox_id)
        if item is None or item.state != "pending":
            return
        self.kept.pop(inbox_id, None)
        applied = apply_result(
            self.ledger,
            provider=item.provider,
            payload=item.payload,
            generation_id=item.generation_id,
            operation=item.operation,
            failure_known_at_ms=item.received_at_ms,
            policy=RefundPolicy(),
            inbox_id=inbox_id,
        )
        outcome = applied.classification.outcome.value
        if outcome in MODEL_TERMINAL:
            self.first.setdefault(applied.generation_id, outcome)

    def _expected_balance(self) -> int:
        refunded = sum(self.charged[g] for g, o in self.first.items() if o in MODEL_REFUNDS)
        return TOP_UP - sum(self.charged.values()) + refunded

    @invariant()
    def balances_match_the_model_and_the_audit_is_clean(self) -> None:
        self.ran["steps"] += 1
        assert self.ledger.balance("acct") == self._expected_balance()
        assert audit(self.ledger.db) == []

    def teardown(self) -> None:
        try:
            self.inbox_sweep()
            while self.queue:
                self._process(self.queue.pop())
            for gen in self.charged:
                stored = self.ledger.generation(gen)
                assert stored is not None
                expected = self.first.get(gen)
                assert (stored.outcome.value if stored.outcome else None) == expected, gen
                if expected is None:
                    assert not self.reported.get(gen), "a reported terminal outcome was lost"
            assert self.ledger.balance("acct") == self._expected_balance()
            assert self.ledger.inbox.counts().get("pending") is None, "an event was left"
        finally:
            self.ledger.db.close()


@pytest.mark.parametrize("fresh_ledgers", ["sqlite", "postgresql"], indirect=True)
def test_generations_under_redelivery_loss_and_sweeps(fresh_ledgers: Callable[[], Ledger]) -> None:
    Generations.ran.update(examples=0, steps=0)
    run_machine(Generations, fresh_ledgers, examples=EXAMPLES, steps=STEPS)
    print(
        f"generation state machine: {Generations.ran['examples']} examples, "
        f"{Generations.ran['steps']} steps"
    )
    assert Generations.ran["examples"] >= min(EXAMPLES, 2)
