"""Property: whatever the duplicates and the order of results, every balance matches a model
in which the first terminal outcome of each generation wins and refunds exactly once."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.generation import RefundPolicy, apply_result
from ledger import Ledger, Outcome, audit
from ledger.errors import Unclassifiable
from workers.demo_payloads import DEMO_OUTCOMES, demo_payload

POLICY = RefundPolicy()
# The model's own statement of the policy (DESIGN.md, "The flow of a generation"), written
# out rather than asked of POLICY: a model must not share the code it checks.
REFUNDED_OUTCOMES = frozenset(
    {Outcome.FAILED, Outcome.EMPTY_SUCCESS, Outcome.MODERATED, Outcome.CANCELLED}
)
TERMINAL_OUTCOMES = REFUNDED_OUTCOMES | {Outcome.SUCCEEDED}
OUTCOMES = {p: (*DEMO_OUTCOMES[p], "pending", "unclassifiable") for p in DEMO_OUTCOMES}

generation = st.tuples(st.sampled_from(sorted(DEMO_OUTCOMES)), st.integers(1, 50))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[tuple[str, int]], list[tuple[int, str, bool]]]:
    gens = draw(st.lists(generation, min_size=1, max_size=6))
    events = draw(
        st.lists(
            st.integers(0, len(gens) - 1).flatmap(
                lambda i: st.tuples(
                    st.just(i), st.sampled_from(OUTCOMES[gens[i][0]]), st.booleans()
                )
            ),
            max_size=30,
        )
    )
    return gens, events


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_balances_match_the_first_terminal_outcome_model(
    ledger: Ledger, scenario: tuple[list[tuple[str, int]], list[tuple[int, str, bool]]]
) -> None:
    gens, events = scenario
    run = uuid.uuid4().hex[:10]  # each example in its own accounts and generations
    account = f"acct-{run}"
    top_up = 50 * len(gens)
    ledger.grant(account_id=account, credits=top_up, idempotency_key=run, reason="test")
    for i, (provider, credits) in enumerate(gens):
        ledger.charge(
            generation_id=f"{run}-{i}",
            account_id=account,
            provider=provider,
            operation="video",
            credits=credits,
            provider_job_id=f"{run}-job-{i}",
        )

    first: dict[int, Outcome] = {}
    for i, outcome, by_id in events:
        provider, _ = gens[i]
        payload = demo_payload(provider, f"{run}-job-{i}", outcome)
        if outcome == "unclassifiable":
            with pytest.raises(Unclassifiable):
                apply_result(
                    ledger,
                    provider=provider,
                    payload=payload,
                    generation_id=f"{run}-{i}" if by_id else None,
                    operation=None,
                    failure_known_at_ms=1,
                    policy=POLICY,
                )
            continue
        applied = apply_result(
            ledger,
            provider=provider,
            payload=payload,
            generation_id=f"{run}-{i}" if by_id else None,
            operation=None,
            failure_known_at_ms=1,
            policy=POLICY,
        )
        assert applied.classification.outcome is Outcome(outcome)
        if Outcome(outcome) in TERMINAL_OUTCOMES:
            first.setdefault(i, Outcome(outcome))

    refunded = sum(
        credits for i, (_, credits) in enumerate(gens) if first.get(i) in REFUNDED_OUTCOMES
    )
    charged = sum(credits for _, credits in gens)
    assert ledger.balance(account) == top_up - charged + refunded
    for i in range(len(gens)):
        gen = ledger.generation(f"{run}-{i}")
        assert gen is not None and gen.outcome == first.get(i)
    assert audit(ledger.db) == []
