"""``refundry demo``: thousands of generations through the real broker into the real ledger.

Charges generations across Fal.ai and Kling, reports their results (every outcome, with
duplicates, contradictions, non-terminal callbacks, unclassifiable payloads and a shuffled
order), waits for the workers with a bound, audits the ledger and prints one JSON line.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import click
import psutil
import redis

from handlers.sla import percentile
from ledger import Generation, Ledger, Outcome, audit, now_ms
from ledger.generations import charged_under
from ledger.private_files import open_private
from workers import client, runtime
from workers.actors import RESULTS_QUEUE
from workers.broker import queue_idle, resolve_redis_url
from workers.demo_payloads import DEMO_OUTCOMES, demo_payload

__all__ = ["run_demo"]

_WEIGHTS = {
    "succeeded": 55,
    "failed": 15,
    "moderated": 10,
    "empty_success": 10,
    "cancelled": 6,
    "unclassifiable": 2,
}


@dataclass
class _Plan:
    generations: list[tuple[str, str, str, str]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    expect_settled: set[str] = field(default_factory=set)
    expect_dead_letters: int = 0


def _plan(run: str, count: int, rng: random.Random) -> _Plan:
    plan = _Plan()
    for i in range(count):
        provider = rng.choice(("fal", "kling"))
        gen_id, job = f"demo-{run}-{i}", f"{run}-{provider}-{i}"
        names = [o for o in _WEIGHTS if o in DEMO_OUTCOMES[provider] or o == "unclassifiable"]
        truth = rng.choices(names, weights=[_WEIGHTS[o] for o in names])[0]
        plan.generations.append((gen_id, provider, job, truth))
        by_id = rng.random() < 0.5  # half found through the provider job id

        def event(
            outcome: str,
            gen_id: str = gen_id,
            provider: str = provider,
            job: str = job,
            by_id: bool = by_id,
        ) -> dict[str, Any]:
            return {
                "provider": provider,
                "payload": demo_payload(provider, job, outcome),
                "generation_id": gen_id if by_id else None,
                "outcome": outcome,
            }

        if rng.random() < 0.4:
            plan.events.append(event("pending"))
        plan.events.append(event(truth))
        for _ in range(rng.choice((0, 0, 1, 2))):  # duplicate deliveries
            plan.events.append(event(truth))
        if truth != "unclassifiable" and rng.random() < 0.03:  # a contradicting late result
            plan.events.append(event("failed" if truth == "succeeded" else "succeeded"))
        if truth != "unclassifiable":
            plan.expect_settled.add(gen_id)
    plan.expect_dead_letters = sum(1 for e in plan.events if e["outcome"] == "unclassifiable")
    rng.shuffle(plan.events)
    return plan


def run_demo(
    generations: int,
    processes: int,
    threads: int,
    timeout_s: float,
    seed: int,
    bench: bool = False,
) -> int:
    """Run the demo; with ``bench``, the JSON line also carries throughput and memory."""
    settings = runtime.settings()
    ledger = runtime.ledger()
    redis_url = resolve_redis_url(settings)
    env = os.environ | {"REDIS_URL": redis_url, "DATABASE_URL": settings.database_url}
    log_path = settings.home / "demo-worker.log"
    click.echo(f"workers log to {log_path}", err=True)
    with open_private(log_path, "ab") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workers.cli",
                "worker",
                "-p",
                str(processes),
                "-t",
                str(threads),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        return _drive(
            ledger, redis_url, generations, timeout_s, seed, worker.pid if bench else None
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _refunded(ledger: Ledger, gen: Generation) -> bool:
    """Whether the policy refunds the outcome of ``gen`` (by the version its charge recorded)."""
    assert gen.outcome is not None
    with ledger.db.read() as tx:
        recorded = charged_under(tx, gen.generation_id)
    return runtime.policy().judge(gen, gen.outcome, recorded).refund


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the dramatiq worker processes)."""
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    return round(float(sum(p.memory_info().rss for p in procs)) / 2**20, 1)


def _drive(
    ledger: Any,
    redis_url: str,
    count: int,
    timeout_s: float,
    seed: int,
    bench_pid: int | None,
) -> int:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    plan = _plan(run, count, rng)
    started_ms = now_ms()
    dead_before = len(ledger.dead.all())
    account = f"demo-{run}"
    client.grant(
        account_id=account, credits=100 * count, idempotency_key=f"demo-{run}", reason="demo top-up"
    )
    with click.progressbar(plan.generations, label="charging", file=sys.stderr) as bar:
        for gen_id, provider, job, _ in bar:
            client.charge(
                generation_id=gen_id,
                account_id=account,
                provider=provider,
                operation="video",
                credits=rng.randint(1, 100),
                provider_job_id=job,
            )
    reporting_started = time.monotonic()
    with click.progressbar(plan.events, label="reporting", file=sys.stderr) as bar:
        for e in bar:
            client.report_result(
                provider=e["provider"], payload=e["payload"], generation_id=e["generation_id"]
            )
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout_s
    settled: set[str] = set()
    pending = set(plan.expect_settled)
    with click.progressbar(length=len(pending), label="settling", file=sys.stderr) as bar:
        while True:
            newly = {g for g in pending if (gen := ledger.generation(g)) and gen.outcome}
            pending -= newly
            settled |= newly
            bar.update(len(newly))
            dead = len(ledger.dead.all()) - dead_before
            if not pending and dead >= plan.expect_dead_letters and queue_idle(r, RESULTS_QUEUE):
                break
            if time.monotonic() > deadline:
                click.echo(f"timed out: {len(pending)} generations unsettled", err=True)
                break
            time.sleep(0.2)  # polling a bounded condition
    r.close()
    wall_s = time.monotonic() - reporting_started
    rss_mb = _rss_mb(bench_pid) if bench_pid is not None else None
    refunded = kept = 0
    for gen_id, *_ in plan.generations:
        gen = ledger.generation(gen_id)
        if gen and gen.outcome is Outcome.SUCCEEDED:
            kept += 1
        elif gen and gen.outcome is not None and _refunded(ledger, gen):
            refunded += 1
    violations = audit(ledger.db, landing_window_ms=runtime.settings().landing_window_s * 1000)
    for v in violations:
        click.echo(str(v), err=True)
    latencies = ledger.refund_latencies_ms(since_ms=started_ms)
    ok = not violations and not pending
    line: dict[str, Any] = {
        "events": len(plan.events),
        "refunded": refunded,
        "kept": kept,
        "dead_lettered": len(ledger.dead.all()) - dead_before,
        "ledger_check": "ok" if ok else "violations" if violations else "unsettled",
        "p50_refund_ms": percentile(latencies, 0.50),
        "p99_refund_ms": percentile(latencies, 0.99),
    }
    if bench_pid is not None:
        line |= {
            "max_refund_ms": max(latencies, default=None),
            "wall_s": round(wall_s, 2),
            "events_per_s": round(len(plan.events) / wall_s, 1),
            "worker_rss_mb": rss_mb,
        }
    click.echo(json.dumps(line))
    return 0 if ok else 1
