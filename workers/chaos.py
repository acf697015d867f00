"""``refundry chaos``: a seeded, adversarial run of the whole system, then an audit.

It starts a real Redis, a real PostgreSQL, a fake Stripe and a fake Kling status API on
loopback (``workers.chaos_stack``: the test suite's servers, so it runs from a checkout),
then ``refundry web``, ``refundry scheduler`` and several ``refundry worker`` groups with
short sweep intervals. It charges the plan's generations (``workers.chaos_plan``) and sends
its deliveries (``workers.chaos_drive``): results of every outcome duplicated and out of
order, through the client and as signed webhooks, broken payloads, stuck jobs whose status
API answers 500 and 429, packs whose Stripe events arrive duplicated, reordered or not at
all, refunds and lost disputes; meanwhile it SIGKILLs worker groups, restarts Redis and
PostgreSQL (cleanly and by SIGKILL) and makes Stripe answer 500, 429 or hang. Then it waits
for the sweeps, runs the reconciliation, sends contradicting late results, and audits
(``workers.chaos_audit``). The same seed replays the same run.

Exit 0 when nothing was lost, doubled or minted and every refund was inside the SLA; 1 on
any violation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger import now_ms
from workers import client, runtime
from workers.chaos_audit import Findings, audit_run, progress
from workers.chaos_drive import Counters, Driver
from workers.chaos_plan import Plan, make_plan
from workers.chaos_stack import Stack

__all__ = ["run_chaos"]

SETTINGS = {
    "REFUNDRY_INBOX_GRACE_MS": "3000",
    "REFUNDRY_SWEEP_INTERVAL_S": "2",
    "REFUNDRY_MIN_BACKOFF_MS": "100",
    "REFUNDRY_MAX_BACKOFF_MS": "5000",
    "REFUNDRY_DEADLINES": json.dumps({"image": [5, 30]}),
    "REFUNDRY_POLL_INTERVAL_S": "2",
    "REFUNDRY_LANDING_WINDOW_S": "5",
    "REFUNDRY_STATUS_ATTEMPTS": "2",
    "REFUNDRY_STATUS_TIMEOUT_S": "2",
}
"""The run's own settings: sweeps every 2 s, stuck images polled after 5 s and refunded at
30 s, packs reconciled 5 s after payment; the refund promise stays the default hour."""


def default_faults(events: int) -> tuple[int, int, int]:
    """Worker kills, Redis and PostgreSQL restarts for a run of ``events``: 1 kill per
    4,000 events (at least 2), 1 restart of each per 25,000 (at least 1, at most 8)."""
    return (
        max(2, events // 4000),
        max(1, min(8, events // 25_000)),
        max(1, min(8, events // 25_000)),
    )


def run_chaos(
    events: int,
    seed: int,
    *,
    as_json: bool,
    workers: int,
    threads: int,
    faults: tuple[int, int, int],
    timeout_s: float,
    home: Path,
) -> int:
    """Run, audit, print the figures (with ``as_json`` one JSON line last); 0 when clean."""
    run = f"{seed}x{time.time_ns() % 10**6}"
    kills, redis_restarts, postgres_restarts = faults
    plan = make_plan(
        events,
        seed,
        kills=kills,
        redis_restarts=redis_restarts,
        postgres_restarts=postgres_restarts,
        run=run,
    )
    console = Console(stderr=True)
    console.print(
        f"chaos: seed {seed}, {plan.events:,} result deliveries, {len(plan.generations):,} "
        f"generations, {len(plan.purchases):,} packs; logs in {home}"
    )
    stack = Stack(home, run=run, workers=workers, threads=threads)
    began = time.monotonic()
    try:
        stack.start(SETTINGS)
        runtime.reset()
        since = now_ms()
        _script_stuck(stack, plan)
        counters = _drive(stack, plan, console, timeout_s)
        logs = sorted(home.glob("*.log"))
        findings = audit_run(plan, counters, run=run, since_ms=since, logs=logs)
    finally:
        stack.close()
    figures = _figures(plan, counters, findings, seed, time.monotonic() - began)
    _print(figures, findings, console, as_json)
    return 0 if findings.violations == 0 else 1


def _script_stuck(stack: Stack, plan: Plan) -> None:
    """Each stuck Kling job's status API answers 500, then 429, then "processing" forever."""
    reply = stack._scripted.Reply
    for gen in plan.generations:
        if gen.truth == "stuck" and gen.provider == "kling":
            stack.kling.script(
                f"generations/{gen.job}",
                reply(500, {"code": 5000, "message": "internal error"}),
                reply(429, {"code": 1302, "message": "rate limit"}, {"Retry-After": "1"}),
                reply(200, stack._status.kling_task(gen.job, "processing")),
            )


def _top_up(plan: Plan) -> None:
    """Every account holds more credits than the run can charge."""
    for account in sorted({g.account for g in plan.generations}):
        client.grant(
            account_id=account, credits=10**9, idempotency_key=f"{account}-top", reason="chaos"
        )


def _drive(stack: Stack, plan: Plan, console: Console, timeout_s: float) -> Counters:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[faults]}"),
    )
    with Progress(*columns, console=console) as bar:
        _top_up(plan)
        sending = bar.add_task("sending", total=len(plan.steps), faults="")

        def shown(c: Counters) -> None:
            bar.update(
                sending,
                advance=1,
                faults=f"kills {c.worker_kills} · redis {c.redis_restarts} · "
                f"postgres {c.postgres_restarts} · stripe {c.stripe_faults}",
            )

        driver = Driver(stack, shown)
        try:
            for step in plan.steps:
                driver.step(step)
            driver.finish()
            settling = bar.add_task("settling", total=len(plan.generations), faults="")
            _settle(plan, stack.run, lambda n: bar.update(settling, completed=n), timeout_s, stack)
            _reconcile(stack, console)
            _settle(plan, stack.run, lambda n: bar.update(settling, completed=n), timeout_s, stack)
            late = bar.add_task("late contradictions", total=len(plan.late), faults="")
            for d in plan.late:
                driver.deliver(d)
                bar.advance(late)
            _settle(plan, stack.run, lambda n: None, timeout_s, stack)
        finally:
            driver.close()
    return driver.counters


def _settle(
    plan: Plan, run: str, shown: Callable[[int], None], timeout_s: float, stack: Stack
) -> None:
    """Wait, bounded, until every generation has an outcome and nothing is pending."""
    deadline = time.monotonic() + timeout_s
    while True:
        done, pending = progress(run)
        shown(max(done, 0))
        if done == len(plan.generations) and pending == 0:
            return
        if time.monotonic() > deadline:
            click.echo(
                f"chaos: not settled in {timeout_s:g} s: {done} outcomes, {pending} pending",
                err=True,
            )
            return
        if not stack.processes_alive():
            raise RuntimeError(f"a Refundry process exited; see the logs in {stack.home}")
        time.sleep(1.0)  # polling a bounded condition


def _reconcile(stack: Stack, console: Console) -> None:
    """Past the landing window, ``refundry reconcile`` completes the packs whose events never
    came (again while Stripe still answers with a scripted fault: exit 5)."""
    time.sleep(int(SETTINGS["REFUNDRY_LANDING_WINDOW_S"]) + 1)  # the landing window passes
    for _ in range(10):
        done = subprocess.run(
            [sys.executable, "-m", "workers.cli", "reconcile"],
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode == 0:
            return
        console.print(f"reconcile exit {done.returncode}: {done.stderr.strip()[-300:]}")
        time.sleep(2.0)  # Stripe's scripted faults run out
    raise RuntimeError("refundry reconcile kept failing")


def _figures(plan: Plan, c: Counters, f: Findings, seed: int, seconds: float) -> dict[str, Any]:
    return {
        "events": c.events,
        "charges": c.charges,
        "generations": len(plan.generations),
        "packs": len(c.purchases),
        "webhooks": c.webhooks,
        "stripe_events": c.stripe_events,
        "worker_kills": c.worker_kills,
        "redis_restarts": c.redis_restarts,
        "postgres_restarts": c.postgres_restarts,
        "stripe_faults": c.stripe_faults,
        "refused_while_down": c.refused_while_down,
        "refunds": f.refunds,
        "lost": f.lost,
        "doubled": f.doubled,
        "minted": f.minted,
        "misjudged": f.misjudged,
        "claw_backs_missing": f.claw_backs_missing,
        "dead_letters": f.dead_letters,
        "unaccounted_dead_letters": f.unaccounted_dead_letters,
        "sla_max_s": f.sla_max_s,
        "sla_breaches": f.sla_breaches,
        "ledger_violations": f.ledger_violations,
        "secrets_leaked": f.secrets_leaked,
        "seconds": round(seconds, 1),
        "seed": seed,
        "ok": f.violations == 0,
    }


def _print(figures: dict[str, Any], findings: Findings, console: Console, as_json: bool) -> None:
    for example in findings.examples:
        console.print(f"violation: {example}")
    if as_json:
        click.echo(json.dumps(figures))
        return
    for name, value in figures.items():
        click.echo(
            f"{name:>26}  {value:,}"
            if isinstance(value, int) and not isinstance(value, bool)
            else f"{name:>26}  {value}"
        )
