"""The chaos run's audit is not vacuous: over a real PostgreSQL ledger settled as the plan
says, it finds nothing; a successful generation refunded is counted as minted (and
misjudged), a failed one left unrefunded as lost, and either makes the run fail."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ledger import Outcome, now_ms
from workers import runtime
from workers.chaos_audit import audit_run
from workers.chaos_drive import Counters
from workers.chaos_plan import Delivery, Plan, make_plan


def _settled_plan(skip: str = "", wrong: str = "") -> Plan:
    """A plan without broken payloads, its generations charged and settled as their truth
    says, except ``skip`` (left unsettled) and ``wrong`` (a success refunded as a failure)."""
    plan = make_plan(300, 4, kills=0, redis_restarts=0, postgres_restarts=0, run="audit")
    plan.steps = [s for s in plan.steps if not (isinstance(s, Delivery) and s.bad)]
    ledger = runtime.ledger()
    for account in {g.account for g in plan.generations}:
        ledger.grant(account_id=account, credits=10**6, idempotency_key=account, reason="t")
    for g in plan.generations:
        ledger.charge(
            generation_id=g.gen_id,
            account_id=g.account,
            provider=g.provider,
            operation=g.operation,
            credits=g.credits,
            provider_job_id=g.job,
        )
        if g.gen_id == skip:
            continue
        truth = "failed" if g.truth in ("stuck",) or g.gen_id == wrong else g.truth
        ledger.settle(
            generation_id=g.gen_id,
            outcome=Outcome(truth),
            reason="audit test",
            refund=truth != "succeeded",
            failure_known_at_ms=now_ms(),
        )
    return plan


@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_a_ledger_settled_as_planned_passes_the_audit(refundry_env: dict[str, str]) -> None:
    since = now_ms()
    found = audit_run(_settled_plan(), Counters(), run="audit", since_ms=since, logs=[])
    assert (found.lost, found.doubled, found.minted, found.misjudged) == (0, 0, 0, 0)
    assert found.violations == 0 and found.refunds > 0


@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_a_refunded_success_is_minted_and_an_unrefunded_failure_is_lost(
    refundry_env: dict[str, str],
) -> None:
    probe = make_plan(300, 4, kills=0, redis_restarts=0, postgres_restarts=0, run="audit")
    success = next(g for g in probe.generations if g.truth == "succeeded")
    failure = next(g for g in probe.generations if g.truth == "failed")
    plan = _settled_plan(skip=failure.gen_id, wrong=success.gen_id)
    found = audit_run(plan, Counters(), run="audit", since_ms=0, logs=[])
    assert found.minted >= 1 and found.misjudged == 2 and found.lost == 1
    assert found.violations > 0
    assert replace(found, examples=[]).doubled == 0
