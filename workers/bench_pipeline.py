"""``refundry bench``: Refundry's refund pipeline against bare dramatiq and a hand-written
peer, in one run on the same Redis and database; and ``refundry bench --storm``.

1. bare dramatiq drains ``events`` no-op messages, then the peer (``workers.bench_actors``)
   refunds ``events`` failures, one transaction each, with the same processes and threads;
2. ``refundry worker`` refunds ``events`` charged generations whose failed results are
   reported (inbox, classification, ledger, ack): refunds/s, and its ratio to (1);
3. the same workers at a fixed offered rate: failure known → refund committed, p50/p99/max;
4. the peak resident memory of each worker process.

Each throughput is the events over the time from the first enqueue (or report) to the last
effect committed; reporting shares the cores with the workers, as it does in production.
The storm reports ``n`` failures at once and times them until the last is refunded, then
audits the ledger (``refundry ledger check``). Never asserted by a timed test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress

from handlers.sla import percentile
from ledger import Ledger, audit, now_ms
from workers import runtime
from workers.bench_load import Load, count_pending, count_refunds_since
from workers.bench_report import machine, print_report
from workers.bench_workers import WorkerGroup, wait_for
from workers.broker import queue_drained, resolve_redis_url

__all__ = ["run_bench", "run_storm"]

_TIMEOUT_S = 3600.0


class _Run:
    """The Redis, ledger and worker settings every phase of one bench run shares."""

    def __init__(self, processes: int, threads: int) -> None:
        settings = runtime.settings()
        self.processes, self.threads = processes, threads
        self.broker_url = settings.amqp_url or resolve_redis_url(settings)
        if settings.amqp_url is None:
            os.environ["REDIS_URL"] = self.broker_url  # the bench's own actors' broker
        self.database_url = settings.database_url
        self.backend = "postgresql" if self.database_url.startswith("postgres") else "sqlite"
        self.home = settings.home
        self.ledger: Ledger = runtime.ledger()
        self.env = os.environ | {"DATABASE_URL": self.database_url}

    def settings(self, **more: Any) -> dict[str, Any]:
        return {"processes": self.processes, "threads": self.threads, **more}

    def peer_database(self) -> str:
        """The peer's database: the ledger's PostgreSQL (its own schema), or a SQLite file
        beside the ledger's, opened as the ledger opens its own."""
        if self.backend == "postgresql":
            return self.database_url
        ledger_file = Path(getattr(self.ledger.db, "path", self.home / "ledger.sqlite3"))
        return f"sqlite:///{ledger_file.with_name('bench-peer.sqlite3')}"

    @contextmanager
    def workers(self, command: list[str], env: dict[str, str], log: str) -> Iterator[WorkerGroup]:
        self.home.mkdir(parents=True, exist_ok=True)
        click.echo(f"workers log to {self.home / log}", err=True)
        group = WorkerGroup(command, env, self.home / log)
        try:
            yield group
        finally:
            group.stop()

    def refundry_workers(self) -> Any:
        command = ["-m", "workers.cli", "worker", "-p", str(self.processes)]
        return self.workers([*command, "-t", str(self.threads)], self.env, "bench-worker.log")


def _drain(run: _Run, group: WorkerGroup, send: Any, n: int, done: Any, what: str) -> float:
    """Send ``n`` messages and wait for ``done``; events per second from the first send."""
    started = time.monotonic()
    for i in range(n):
        send(i)
    wait_for(done, timeout_s=_TIMEOUT_S, what=what, alive=lambda: group.alive)
    return round(n / (time.monotonic() - started), 1)


def _yardsticks(run: _Run, events: int) -> dict[str, Any]:
    """Bare dramatiq and the hand-written peer, on the same workers' settings."""
    from workers import bench_actors as bench

    peer_url = run.peer_database()
    bench.create_peer_tables(peer_url)
    command = ["-m", "dramatiq", "workers.bench_actors", "--processes", str(run.processes)]
    command += ["--threads", str(run.threads)]
    env = run.env | {"BENCH_PEER_DATABASE": peer_url}
    prefix = f"peer-{time.time_ns()}-"
    with run.workers(command, env, "bench-yardsticks.log") as group:
        bench.bench_noop.send()  # the processes are up and consuming
        idle = lambda: queue_drained(bench.broker, bench.BARE_QUEUE)  # noqa: E731
        wait_for(idle, timeout_s=120, what="warm-up")
        bare = _drain(
            run,
            group,
            lambda _: bench.bench_noop.send(),
            events,
            idle,
            "bare dramatiq",
        )
        click.echo(f"bare dramatiq: {bare:,} msgs/s", err=True)
        bench.bench_peer_refund.send(f"{prefix}warm", "acct-warm", 1)
        wait_for(lambda: bench.peer_refunds(peer_url, prefix) == 1, timeout_s=120, what="warm-up")
        peer = _drain(
            run,
            group,
            lambda i: bench.bench_peer_refund.send(f"{prefix}{i}", f"acct-{i % 100}", 7),
            events,
            lambda: bench.peer_refunds(peer_url, prefix) == events + 1,
            "the peer",
        )
        click.echo(f"hand-written peer: {peer:,} refunds/s", err=True)
        rss = group.peak_rss_mb()
    return {"bare_per_s": bare, "peer_per_s": peer, "bare_rss_mb_max": rss}


def _refunded(run: _Run, since_ms: int, n: int) -> Any:
    return lambda: count_refunds_since(run.ledger, since_ms) >= n


def run_bench(
    events: int, rate_per_s: float, latency_events: int, processes: int, threads: int, as_json: bool
) -> int:
    """Run the benchmark and print its figures; 0 when the ledger checks out."""
    run = _Run(processes, threads)
    figures: dict[str, Any] = {"events": events}
    figures |= _yardsticks(run, events)
    load = Load.new(run.ledger)
    click.echo(f"charging {events + latency_events + 1:,} generations", err=True)
    load.charge(0, events + latency_events + 1, progress=lambda _: None)
    with run.refundry_workers() as group:
        began = now_ms()
        load.report_failed([events + latency_events])  # warm-up: processes up and consuming
        wait_for(_refunded(run, began, 1), timeout_s=120, what="warm-up", alive=lambda: group.alive)
        started_ms = now_ms()
        started = time.monotonic()
        load.report_failed(range(events))
        wait_for(
            _refunded(run, started_ms, events),
            timeout_s=_TIMEOUT_S,
            what="Refundry",
            alive=lambda: group.alive,
        )
        figures["refundry_per_s"] = round(events / (time.monotonic() - started), 1)
        click.echo(f"Refundry: {figures['refundry_per_s']:,} refunds/s", err=True)
        paced_ms = now_ms()
        load.report_paced(list(range(events, events + latency_events)), rate_per_s)
        wait_for(
            _refunded(run, paced_ms, latency_events),
            timeout_s=_TIMEOUT_S,
            what="the paced run",
            alive=lambda: group.alive,
        )
        figures["rss_mb_max"] = group.peak_rss_mb()
    latencies = run.ledger.refund_latencies_ms(since_ms=paced_ms)
    figures |= {
        "ratio": round(figures["refundry_per_s"] / figures["bare_per_s"], 3),
        "peer_ratio": round(figures["peer_per_s"] / figures["bare_per_s"], 3),
        "rate_per_s": rate_per_s,
        "latency_events": latency_events,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies, default=None),
        "ledger_check": _check(run),
        "settings": run.settings(rate_per_s=rate_per_s, **_batch_settings()),
        "machine": machine(run.broker_url, run.database_url, run.backend),
    }
    print_report(figures, as_json=as_json)
    return 0 if figures["ledger_check"] == "ok" else 1


def run_storm(n: int, processes: int, threads: int, as_json: bool) -> int:
    """Report ``n`` failures at once, time them until all are refunded, audit the ledger."""
    run = _Run(processes, threads)
    load = Load.new(run.ledger)
    with Progress(transient=False) as bar:
        charging = bar.add_task("charging", total=n + 1)
        load.charge(0, n + 1, progress=lambda k: bar.advance(charging, k))
    with run.refundry_workers() as group, Progress() as bar:
        began = now_ms()
        load.report_failed([n])  # warm-up
        wait_for(_refunded(run, began, 1), timeout_s=120, what="warm-up", alive=lambda: group.alive)
        started_ms, started = now_ms(), time.monotonic()
        refunding = bar.add_task("refunding", total=n)
        load.report_failed(range(n), chunk=1000)
        while (done := count_refunds_since(run.ledger, started_ms)) < n:
            bar.update(refunding, completed=done)
            if not group.alive:
                raise RuntimeError("the workers exited during the storm")
            if time.monotonic() - started > _TIMEOUT_S:
                raise TimeoutError(f"storm: {n - done} not refunded within {_TIMEOUT_S:g} s")
            time.sleep(0.25)  # polling a bounded condition for the progress bar
        seconds = time.monotonic() - started
        bar.update(refunding, completed=n)
        rss = group.peak_rss_mb()
    figures: dict[str, Any] = {
        "storm_events": n,
        "storm_seconds": round(seconds, 2),
        "storm_per_s": round(n / seconds, 1),
        "rss_mb_max": rss,
        "ledger_check": _check(run),
        "settings": run.settings(**_batch_settings()),
        "machine": machine(run.broker_url, run.database_url, run.backend),
    }
    print_report(figures, as_json=as_json)
    return 0 if figures["ledger_check"] == "ok" else 1


def _check(run: _Run) -> str:
    """``ok`` when the whole ledger passes ``refundry ledger check`` and nothing is pending."""
    violations = audit(run.ledger.db, landing_window_ms=runtime.settings().landing_window_s * 1000)
    for v in violations:
        click.echo(str(v), err=True)
    if violations:
        return f"{len(violations)} violations"
    pending = count_pending(run.ledger)
    return "ok" if pending == 0 else f"{pending} pending"


def _batch_settings() -> dict[str, Any]:
    """The settings that change how results are applied."""
    return {"result_batch": runtime.settings().result_batch}
