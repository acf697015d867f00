"""The chaos run's workload is drawn from its seed alone: the same seed, the same plan (a
failing run replays); another seed, another plan; every fault asked for is in it."""

from __future__ import annotations

from workers.chaos import default_faults
from workers.chaos_plan import Delivery, Fault, Purchase, make_plan


def _plan(seed: int, events: int = 3000) -> list[object]:
    plan = make_plan(events, seed, kills=7, redis_restarts=3, postgres_restarts=3, run="r")
    return [(type(s).__name__, repr(s)) for s in plan.steps]


def test_the_same_seed_gives_the_same_plan_and_another_seed_another() -> None:
    assert _plan(5) == _plan(5)
    assert _plan(5) != _plan(6)


def test_a_plan_holds_every_fault_outcome_and_door_asked_for() -> None:
    plan = make_plan(5000, 9, kills=7, redis_restarts=3, postgres_restarts=4, run="r")
    faults = [s for s in plan.steps if isinstance(s, Fault)]
    assert sum(f.kind == "kill" for f in faults) == 7
    assert sum(f.kind == "redis" for f in faults) == 3
    assert sum(f.kind == "postgres" for f in faults) == 4
    deliveries = [s for s in plan.steps if isinstance(s, Delivery)]
    assert {d.outcome for d in deliveries} >= {
        "succeeded",
        "failed",
        "moderated",
        "empty_success",
        "cancelled",
        "pending",
    }
    assert {d.via for d in deliveries} == {"client", "webhook"}
    assert any(g.truth == "stuck" for g in plan.generations)
    assert {p.deliver for p in plan.steps if isinstance(p, Purchase)} == {
        "all",
        "dup",
        "some",
        "none",
    }
    assert 4800 <= plan.events <= 5400


def test_the_default_faults_of_a_hundred_thousand_events_meet_the_targets() -> None:
    kills, redis, postgres = default_faults(100_000)
    assert kills >= 20 and redis >= 3 and postgres >= 3
