"""The ``refundry`` command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any

import click

from ledger import audit, migrate, open_database
from ledger.errors import RefundryError
from providers.registry import PROVIDER_NAMES, classify
from workers import runtime
from workers.logs import install_redaction

__all__ = ["main"]


@click.group()
def main() -> None:
    """Refundry: exactly-once credit refunds for AI generation platforms."""
    install_redaction()


@main.command()
@click.option("-p", "--processes", default=2, show_default=True, help="worker processes")
@click.option("-t", "--threads", default=8, show_default=True, help="threads per process")
def worker(processes: int, threads: int) -> None:
    """Run the dramatiq workers (embedded Redis when REDIS_URL is unset)."""
    from workers.broker import resolve_redis_url

    settings = runtime.settings()
    runtime.ledger()  # apply migrations once, before the workers start
    env = os.environ | {"REDIS_URL": resolve_redis_url(settings)}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dramatiq",
            "workers.actors",
            "--processes",
            str(processes),
            "--threads",
            str(threads),
        ],
        env=env,
    )

    def forward(signum: int, _frame: Any) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    sys.exit(child.wait())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8000, show_default=True, envvar="PORT", help="or $PORT")
@click.option("-p", "--processes", default=1, show_default=True, help="server processes")
def web(host: str, port: int, processes: int) -> None:
    """Serve the webhook ingress, /healthz and /readyz (Procfile web)."""
    from workers.web import serve

    try:
        serve(host, port, processes=processes)
    except RefundryError as exc:
        click.echo(f"refundry: {exc.reason}", err=True)
        sys.exit(2)


@main.command("classify")
@click.option("--provider", required=True, help=f"one of: {', '.join(PROVIDER_NAMES)}")
@click.option("--operation", default=None, help="video, image, music, stems, training, …")
@click.argument("file", type=click.File("r"))
def classify_command(provider: str, operation: str | None, file: IO[str]) -> None:
    """Classify one provider payload (FILE, or - for stdin); print its outcome as JSON."""
    try:
        payload = json.load(file)
    except json.JSONDecodeError as exc:
        click.echo(f"refundry: malformed JSON: {exc}", err=True)
        sys.exit(2)
    try:
        result = classify(provider, payload, operation)
    except RefundryError as exc:
        click.echo(f"refundry: {exc.reason}", err=True)
        sys.exit(2)
    out: dict[str, Any] = {"outcome": result.outcome.value, "reason": result.reason}
    if result.provider_job_id is not None:
        out["provider_job_id"] = result.provider_job_id
    click.echo(json.dumps(out))


@main.group()
def ledger() -> None:
    """Ledger operations: migrate, check, balance."""


@ledger.command("migrate")
def ledger_migrate() -> None:
    """Apply pending schema migrations."""
    settings = runtime.settings()
    # Not runtime.ledger(): opening the ledger migrates, and this command reports what it did.
    db = open_database(settings.database_url, pg_schema=settings.pg_schema)
    try:
        applied = migrate(db)
    finally:
        db.close()
    click.echo("\n".join(applied) if applied else "up to date")


@ledger.command("check")
def ledger_check() -> None:
    """Audit the ledger's invariants: prints ok, or each violation (exit 1)."""
    violations = audit(runtime.ledger().db)
    if not violations:
        click.echo("ok")
        return
    for v in violations:
        click.echo(str(v))
    sys.exit(1)


@ledger.command("balance")
@click.argument("account")
def ledger_balance(account: str) -> None:
    """Print an account's balance."""
    click.echo(str(runtime.ledger().balance(account)))


@main.group()
def dlq() -> None:
    """Dead letters: list, show, replay, purge."""


@dlq.command("list")
def dlq_list() -> None:
    """One JSON line per dead letter: message id, reason, when."""
    for row in runtime.ledger().dead.all():
        click.echo(json.dumps({k: row[k] for k in ("message_id", "reason", "created_at_ms")}))


@dlq.command("show")
@click.argument("message_id")
def dlq_show(message_id: str) -> None:
    """The whole dead letter (its message is stored redacted)."""
    row = runtime.ledger().dead.get(message_id)
    if row is None:
        click.echo(f"refundry: no dead letter {message_id}", err=True)
        sys.exit(2)
    click.echo(json.dumps(row, default=str))


@dlq.command("replay")
@click.argument("message_id")
def dlq_replay(message_id: str) -> None:
    """Put the dead letter's event back in the inbox and enqueue it again."""
    from workers.actors import enqueue_event

    ledger = runtime.ledger()
    if ledger.dead.get(message_id) is None:
        click.echo(f"refundry: no dead letter {message_id}", err=True)
        sys.exit(2)
    kind = ledger.dead.release(message_id, reopen=True)
    if kind is not None:
        enqueue_event(kind, message_id)
    click.echo(json.dumps({"replayed": message_id, "enqueued": kind is not None}))


@dlq.command("purge")
@click.argument("message_id")
def dlq_purge(message_id: str) -> None:
    """Forget a dead letter (its event stays closed in the inbox)."""
    ledger = runtime.ledger()
    if ledger.dead.get(message_id) is None:
        click.echo(f"refundry: no dead letter {message_id}", err=True)
        sys.exit(2)
    ledger.dead.release(message_id, reopen=False)
    click.echo(json.dumps({"purged": message_id}))


@main.command()
def scheduler() -> None:
    """Run the periodic sweeps (inbox redelivery, SLA alerts)."""
    from workers.scheduler import run_scheduler

    run_scheduler()


@main.command()
@click.option("--grace-ms", type=int, default=None, help="override REFUNDRY_INBOX_GRACE_MS")
def sweep(grace_ms: int | None) -> None:
    """Run every sweep once and print what it did as JSON."""
    from dataclasses import asdict

    from workers.sweeps import run_inbox_sweep, run_sla_check, run_stuck_sweep

    inbox = run_inbox_sweep(grace_ms)
    stuck = run_stuck_sweep()
    sla = run_sla_check()
    click.echo(json.dumps({"inbox": asdict(inbox), "stuck": asdict(stuck), "sla": sla.as_dict()}))


@main.command()
@click.option("--window", "window_s", default=3600, show_default=True, help="seconds back")
def sla(window_s: int) -> None:
    """Refund latency over a window: count, p50, p99, max and breaches of the SLA."""
    from handlers.sla import sla_report

    s = runtime.settings()
    report = sla_report(runtime.ledger(), window_ms=window_s * 1000, sla_ms=s.refund_sla_ms)
    click.echo(json.dumps(report.as_dict()))


def _since(text: str | None) -> int | None:
    """``--since``: epoch seconds, an ISO date or time, or an age such as ``48h``, ``90m``,
    ``2d`` (a two-line parser, not worth a dependency)."""
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1] in units:
        return int(time.time()) - int(text[:-1]) * units[text[-1]]
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter("epoch seconds, an ISO date/time, or 48h / 90m / 2d") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


@main.command("reconcile")
@click.option("--since", default=None, help="epoch s, ISO date/time or age (48h); default 24h")
@click.option("--dry-run", is_flag=True, help="report the decisions, change nothing")
def reconcile_command(since: str | None, dry_run: bool) -> None:
    """Compare paid packs at the payment provider with the ledger and settle the unlanded."""
    from workers.sweeps import run_reconciliation

    try:
        report = run_reconciliation(_since(since), dry_run=dry_run)
    except RefundryError as exc:
        click.echo(f"refundry: {exc.reason}", err=True)
        sys.exit(2)
    for decision in report.decisions:
        click.echo(json.dumps(decision))
    click.echo(
        json.dumps({"seen": report.seen, "decisions": len(report.decisions), "dry_run": dry_run})
    )


@main.command()
@click.option("--generations", default=3000, show_default=True)
@click.option("-p", "--processes", default=2, show_default=True)
@click.option("-t", "--threads", default=8, show_default=True)
@click.option("--timeout", "timeout_s", default=600.0, show_default=True)
@click.option("--seed", default=7, show_default=True)
def demo(generations: int, processes: int, threads: int, timeout_s: float, seed: int) -> None:
    """Charge and report thousands of generations end to end; print one JSON line."""
    from workers.demo import run_demo

    sys.exit(run_demo(generations, processes, threads, timeout_s, seed))


@main.command()
@click.option("--generations", default=3000, show_default=True)
@click.option("-p", "--processes", default=2, show_default=True, help="worker (or web) processes")
@click.option("-t", "--threads", default=8, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--ingress", is_flag=True, help="measure verified webhooks/s of refundry web")
@click.option("--deliveries", default=20000, show_default=True, help="with --ingress")
@click.option("--concurrency", default=32, show_default=True, help="with --ingress")
def bench(
    generations: int,
    processes: int,
    threads: int,
    seed: int,
    ingress: bool,
    deliveries: int,
    concurrency: int,
) -> None:
    """The demo's workload, measured: throughput, refund latency, worker memory (JSON).
    With --ingress: signed webhooks posted to a local refundry web, verified and kept."""
    if ingress:
        from workers.bench_ingress import run_ingress_bench

        sys.exit(run_ingress_bench(deliveries, concurrency, processes))
    from workers.demo import run_demo

    sys.exit(run_demo(generations, processes, threads, 900.0, seed, bench=True))


if __name__ == "__main__":
    main()
