"""The workload of ``refundry chaos``, drawn from one seed: which generations are charged,
what their providers report (every outcome, duplicated, out of order, through the client or
as signed webhooks, some never: stuck jobs), which packs are bought and how their Stripe
events arrive (duplicated, reordered, missing), and when each fault strikes.

The plan is pure data: the same seed gives the same plan, so a failing run replays.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from workers.demo_payloads import DEMO_OUTCOMES, demo_payload

__all__ = [
    "REFUNDABLE",
    "Charge",
    "Delivery",
    "Fault",
    "Generation",
    "Plan",
    "Purchase",
    "make_plan",
]

REFUNDABLE = frozenset({"failed", "moderated", "empty_success", "cancelled", "stuck"})
"""Truths whose credits come back (``stuck``: no result ever, refunded at the hard deadline)."""

_TRUTHS = {
    "succeeded": 45,
    "failed": 16,
    "moderated": 9,
    "empty_success": 9,
    "cancelled": 6,
    "stuck": 4,
}
_WINDOW = 64
"""Generations whose deliveries are interleaved at any moment (the reordering window)."""
_EVENTS_PER_PURCHASE = 40
"""One pack bought for about this many events."""


@dataclass(frozen=True, slots=True)
class Generation:
    """A charged generation and what really happened to it (``truth``)."""

    gen_id: str
    account: str
    provider: str
    operation: str
    job: str
    credits: int
    truth: str


@dataclass(frozen=True, slots=True)
class Charge:
    """The pipeline charges ``gen`` as its job starts, just before anything is reported
    about it (as a platform does: results come seconds or minutes after the charge)."""

    gen: Generation


@dataclass(frozen=True, slots=True)
class Delivery:
    """One report of a result: ``via`` ``client`` (``workers.client.report_result``) or
    ``webhook`` (signed, posted to ``refundry web``; ``webhook_id`` reused by a redelivery);
    ``bad``: a payload no classifier reads, which must end as a dead letter."""

    gen: Generation
    outcome: str
    via: str
    by_id: bool
    webhook_id: str = ""
    bad: bool = False

    def payload(self) -> dict[str, Any]:
        if self.bad:
            return demo_payload(self.gen.provider, self.gen.job, "unclassifiable") | {
                "chaos_bad": self.gen.gen_id
            }
        return demo_payload(self.gen.provider, self.gen.job, self.outcome)


@dataclass(frozen=True, slots=True)
class Purchase:
    """A pack bought at Stripe; ``deliver`` says how its events arrive (``all``, ``dup``:
    each once or more, ``some``: one of them, ``none``: missing, left to reconciliation);
    ``then``: ``refund`` or ``dispute`` after it landed, or ``""``."""

    index: int
    account: str
    deliver: str
    then: str


@dataclass(frozen=True, slots=True)
class Fault:
    """``kill`` (SIGKILL a worker group), ``redis`` / ``postgres`` (restart: ``hard`` is a
    SIGKILL, else a clean stop), ``stripe`` (its API answers ``status``: 500, 429, or 0 for
    a timeout, ``times`` times)."""

    kind: str
    hard: bool = False
    status: int = 500
    times: int = 1


Step = Charge | Delivery | Purchase | Fault


@dataclass
class Plan:
    seed: int
    generations: list[Generation] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    late: list[Delivery] = field(default_factory=list)
    """Contradicting results sent once everything settled: never applied (first one wins)."""

    @property
    def events(self) -> int:
        """Deliveries the run sends: results, bad payloads and the late contradictions
        (a purchase's Stripe events are counted as they are sent)."""
        return sum(isinstance(s, Delivery) for s in self.steps) + len(self.late)

    @property
    def purchases(self) -> list[Purchase]:
        return [s for s in self.steps if isinstance(s, Purchase)]

    @property
    def bad(self) -> list[Delivery]:
        return [s for s in self.steps if isinstance(s, Delivery) and s.bad]


def _deliveries(gen: Generation, rng: random.Random) -> list[Delivery]:
    """What the provider sends about ``gen``: its truth (duplicated 0-2 times, through
    either door), a non-terminal callback before or after it, sometimes a broken payload."""
    by_id = rng.random() < 0.5
    webhook = gen.provider == "kling" and rng.random() < 0.3
    hook = f"wh-{gen.gen_id}"
    out: list[Delivery] = []
    if gen.truth != "stuck":
        for n in range(1 + rng.choice((0, 0, 1, 2))):
            if webhook:  # a redelivery carries the same webhook-id; a new attempt another
                same = n == 0 or rng.random() < 0.7
                out.append(
                    Delivery(gen, gen.truth, "webhook", by_id, hook if same else f"{hook}-{n}")
                )
            else:
                out.append(Delivery(gen, gen.truth, "client", by_id))
    if rng.random() < 0.4:
        out.append(Delivery(gen, "pending", "client", by_id))
    if rng.random() < 0.01:
        out.append(Delivery(gen, "unclassifiable", "client", False, bad=True))
    rng.shuffle(out)
    return out


def _interleave(queues: list[list[Charge | Delivery]], rng: random.Random) -> list[Step]:
    """The deliveries of many generations interleaved, ``_WINDOW`` generations at a time,
    each generation's own list kept in its order: its charge, then its (already shuffled)
    deliveries."""
    out: list[Step] = []
    active: list[list[Charge | Delivery]] = []
    pending = iter(queues)
    while True:
        while len(active) < _WINDOW and (nxt := next(pending, None)) is not None:
            if nxt:
                active.append(nxt)
        if not active:
            return out
        queue = active[rng.randrange(len(active))]
        out.append(queue.pop(0))
        if not queue:
            active.remove(queue)


def _faults(kills: int, redis: int, postgres: int, stripe: int, rng: random.Random) -> list[Fault]:
    faults = [Fault("kill") for _ in range(kills)]
    faults += [Fault("redis", hard=i % 2 == 1) for i in range(redis)]
    faults += [Fault("postgres", hard=i % 2 == 1) for i in range(postgres)]
    faults += [
        Fault("stripe", status=(500, 429, 0)[i % 3], times=rng.randint(1, 4)) for i in range(stripe)
    ]
    rng.shuffle(faults)
    return faults


def make_plan(
    events: int,
    seed: int,
    *,
    kills: int,
    redis_restarts: int,
    postgres_restarts: int,
    run: str,
) -> Plan:
    """About ``events`` deliveries (at least one generation), the faults spread evenly over
    the middle 80 % of them; ``run`` prefixes every id so runs never collide."""
    rng = random.Random(seed)
    plan = Plan(seed)
    queues: list[list[Charge | Delivery]] = []
    sent = 0
    i = 0
    while sent < events * 0.97 or not plan.generations:
        provider = rng.choice(("fal", "kling"))
        names = [t for t in _TRUTHS if t in DEMO_OUTCOMES[provider] or t == "stuck"]
        truth = rng.choices(names, weights=[_TRUTHS[t] for t in names])[0]
        gen = Generation(
            gen_id=f"chaos-{run}-{i}",
            account=f"chaos-{run}-acct-{i % 50}",
            provider=provider,
            operation="image" if truth == "stuck" else "video",
            job=f"chaos-{run}-{provider}-{i}",
            credits=rng.randint(1, 100),
            truth=truth,
        )
        plan.generations.append(gen)
        queue = _deliveries(gen, rng)
        queues.append([Charge(gen), *queue])
        sent += len(queue)
        if truth != "stuck" and rng.random() < 0.03:
            contra = "failed" if truth == "succeeded" else "succeeded"
            plan.late.append(Delivery(gen, contra, "client", True))
        i += 1
    steps = _interleave(queues, rng)
    purchases = max(1, events // _EVENTS_PER_PURCHASE)
    for p in range(purchases):
        deliver = rng.choices(("all", "dup", "some", "none"), weights=(5, 3, 1, 1))[0]
        then = rng.choices(("", "refund", "dispute"), weights=(8, 1, 1))[0]
        at = rng.randrange(len(steps) + 1)
        steps.insert(at, Purchase(p, f"chaos-{run}-buyer-{p}", deliver, then))
    faults = _faults(kills, redis_restarts, postgres_restarts, max(2, kills // 3), rng)
    for n, fault in enumerate(faults):
        share = 0.1 + 0.8 * (n + rng.random()) / len(faults)
        steps.insert(int(len(steps) * share), fault)
    plan.steps = steps
    return plan
