"""The ``refundry`` command line.

Every argument goes through the rules every door shares (``workers.validation``), and every
``RefundryError`` ends as one line on stderr with the exit code of its kind
(``workers.exit_codes``), never a traceback. Read-only commands (``ledger balance``,
``ledger check``, ``dlq …``, ``sla``, ``status``), ``sweep`` and ``reconcile`` never create a
ledger: where there is none, they say where they looked and exit 3.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from typing import IO, Any

import click

from ledger.errors import LedgerNotFound, RefundryError
from ledger.redaction import redact
from providers.base import OPERATIONS
from providers.registry import PROVIDER_NAMES, classify
from workers import cli_options as opt
from workers import exit_codes, runtime, validation
from workers.cli_explain import eligibility_command, explain_command
from workers.cli_ledger import dlq, ledger
from workers.cli_policy import policy
from workers.logs import configure_logging, install_redaction

__all__ = ["boot_worker", "main"]

# dramatiq's CLI after the worker's own start: Sentry set up before any broker is built
# (its dramatiq integration patches the broker class; the worker processes fork from this
# one), never at import of workers.actors, which the pipeline's own process imports too.
_DRAMATIQ = "import sys; from workers.cli import boot_worker; sys.exit(boot_worker())"


def boot_worker() -> int:
    """The ``refundry worker`` process, before dramatiq's CLI: redacted logs (JSON ones set
    up here, so dramatiq's own lines are JSON too; text ones are left to dramatiq, which sets
    them up only when nothing has), Sentry (``process: worker``), then dramatiq's CLI."""
    from dramatiq.cli import main as dramatiq_main

    from workers.sentry_setup import init_sentry

    install_redaction()
    settings = runtime.settings()
    if settings.log_format == "json":
        configure_logging("json")
    init_sentry(settings, process="worker")
    return int(dramatiq_main() or 0)  # type: ignore[no-untyped-call]  # untyped upstream


class _Refundry(click.Group):
    """The command group: shows where the ledger is in ``--help``, and turns a
    ``RefundryError`` into one line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RefundryError as exc:
            message = " ".join(str(exc).split())  # one line, whatever the fields hold
            click.echo(f"refundry: {type(exc).__name__}: {message}", err=True)
            ctx.exit(exit_codes.exit_code(exc))
        except BrokenPipeError:
            # The reader went away (``| head``): what is left is unwanted. Exit quietly as a
            # shell's command killed by SIGPIPE does (141), with nothing left to flush.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        try:
            where = runtime.ledger_location()
        except RefundryError as exc:
            where = f"unknown ({exc})"
        formatter.write_paragraph()
        formatter.write_text(
            "Ledger (DATABASE_URL, else ledger.sqlite3 under REFUNDRY_HOME; "
            "`refundry status` tells whether it exists):"
        )
        formatter.write(f"  {where}\n")  # unwrapped: a path must stay copyable


@click.group(cls=_Refundry)
def main() -> None:
    """Refundry: exactly-once credit refunds for AI generation platforms."""
    install_redaction()


main.add_command(ledger)
main.add_command(dlq)
main.add_command(policy)
main.add_command(explain_command)
main.add_command(eligibility_command)


def _report(line: str) -> None:
    """One line on stderr, as a long-running command reports what it waits for: a JSON
    object like every other line with ``REFUNDRY_LOG_FORMAT=json``."""
    if runtime.settings().log_format == "json":
        configure_logging("json")  # idempotent: the handler, once, then its format
        logging.getLogger("refundry").warning("%s", line)
        return
    click.echo(f"refundry: {line}", err=True)


@main.command()
@click.option(
    "-p", "--processes", type=opt.PROCESSES, default=2, show_default=True, help="processes"
)
@click.option("-t", "--threads", type=opt.THREADS, default=8, show_default=True, help="per process")
def worker(processes: int, threads: int) -> None:
    """Run the dramatiq workers (embedded Redis when REDIS_URL is unset).

    An unreachable ledger database or REDIS_URL is waited for: one line per attempt, the
    wait doubling up to 30 s, before the workers start.
    """
    from workers.broker import resolve_redis_url
    from workers.budgets import Budgets
    from workers.dependencies import wait_for_broker, wait_for_ledger
    from workers.pg_pools import check_room, worker_pool_size

    settings = runtime.settings()
    Budgets(settings).check_rabbitmq()  # refused here, not in each worker process
    book = wait_for_ledger(_report)  # and apply migrations once, before the workers start
    pool = worker_pool_size(threads)
    check_room(
        book,
        processes * pool,
        what=f"refundry worker -p {processes} -t {threads}",
        own_pool=runtime.pool_name(),
    )
    runtime.reset()  # this process holds no connection while its workers run
    wait_for_broker(settings, _report)
    env = dict(os.environ) | {"REFUNDRY_PG_POOL_SIZE": str(pool)}
    if settings.amqp_url is None:
        env["REDIS_URL"] = resolve_redis_url(settings)
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _DRAMATIQ,
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
@click.option(
    "--host", type=opt.HOST, default="127.0.0.1", show_default=True, help="address to listen on"
)
@click.option(
    "--port", type=opt.PORT, default=8000, show_default=True, envvar="PORT", help="or $PORT"
)
@click.option(
    "-p", "--processes", type=opt.PROCESSES, default=1, show_default=True, help="processes"
)
def web(host: str, port: int, processes: int) -> None:
    """Serve the webhook ingress, /healthz and /readyz (Procfile web)."""
    from workers.metrics_folder import prepare

    prepare(runtime.settings().home)  # before prometheus-client is imported (workers.web)
    from workers.web import serve

    serve(host, port, processes=processes)


@main.command("classify")
@click.option("--provider", required=True, help=f"one of: {', '.join(PROVIDER_NAMES)}")
@click.option("--operation", default=None, help=f"one of: {', '.join(OPERATIONS)}")
@click.argument("file", type=click.File("rb"))
def classify_command(provider: str, operation: str | None, file: IO[bytes]) -> None:
    """Classify one provider payload (FILE, or - for stdin); print its outcome as JSON."""
    provider = validation.provider(provider)
    operation = validation.optional_operation(operation)
    payload = validation.json_document(file.read(validation.MAX_PAYLOAD_BYTES + 1))
    result = classify(provider, payload, operation)
    out: dict[str, Any] = {"outcome": result.outcome.value, "reason": result.reason}
    if result.provider_job_id is not None:
        out["provider_job_id"] = result.provider_job_id
    click.echo(json.dumps(redact(out)))  # a provider's message may quote a credential


@main.command()
def status() -> None:
    """Where the ledger and the broker are, and whether the ledger exists (one JSON line);
    exit 3 when there is no ledger there yet. Creates nothing."""
    from workers.broker_urls import broker_location

    s = runtime.settings()
    out: dict[str, Any] = {
        "home": str(s.home),
        "ledger": runtime.ledger_location(),
        "broker": broker_location(s.redis_url, s.amqp_url)
        or f"embedded redis-server, data in {s.home / 'redis'}",
    }
    try:
        book = runtime.ledger(create=False)
    except LedgerNotFound:
        click.echo(json.dumps(out | {"ledger_exists": False}))
        sys.exit(exit_codes.NOT_FOUND)
    with book.db.read() as tx:
        versions = [int(row["version"]) for row in tx.all("applied_migrations")]
    click.echo(json.dumps(out | {"ledger_exists": True, "schema_version": max(versions)}))


@main.command()
def scheduler() -> None:
    """Run the periodic sweeps (inbox redelivery, SLA alerts); an unreachable ledger
    database is waited for like the worker does."""
    from workers.dependencies import wait_for_ledger
    from workers.pg_pools import check_room
    from workers.scheduler import run_scheduler

    book = wait_for_ledger(_report)
    size = runtime.settings().pg_pool_size
    check_room(book, size, what="refundry scheduler", own_pool=runtime.pool_name())
    run_scheduler()


@main.command()
@click.option(
    "--grace-ms", type=opt.GRACE_MS, default=None, help="override REFUNDRY_INBOX_GRACE_MS"
)
def sweep(grace_ms: int | None) -> None:
    """Run every sweep once and print what it did as JSON. Creates nothing: where there is
    no ledger it says where it looked (exit 3); Redis is only reached to enqueue."""
    from dataclasses import asdict

    from workers.sweeps import run_inbox_sweep, run_sla_check, run_stuck_sweep

    _init_sentry()  # the SLA check's alerts, as the scheduler's run raises them
    runtime.ledger(create=False)  # the process's ledger from now on, never a new one
    inbox = run_inbox_sweep(grace_ms)
    stuck = run_stuck_sweep()
    sla = run_sla_check()
    out = {"inbox": asdict(inbox), "stuck": asdict(stuck), "sla": sla.as_dict()}
    from workers.sweeps import run_events_out

    events = run_events_out()
    click.echo(json.dumps(out | {"events_out": None if events is None else asdict(events)}))


@main.command()
@click.option(
    "--window", "window_s", type=opt.WINDOW_S, default=3600, show_default=True, help="seconds"
)
def sla(window_s: int) -> None:
    """Refund latency over a window: count, p50, p99, max and breaches of the SLA."""
    from handlers.sla import sla_report

    s = runtime.settings()
    book = runtime.ledger(create=False)
    report = sla_report(book, window_ms=window_s * 1000, sla_ms=s.refund_sla_ms)
    click.echo(json.dumps(report.as_dict()))


def _init_sentry() -> None:
    """Sentry for a one-shot command that raises alerts (``SENTRY_DSN``; tag ``process:
    cli``); sentry-sdk sends what it holds as the process exits."""
    from workers.sentry_setup import init_sentry

    init_sentry(runtime.settings(), process="cli")


@main.command("reconcile")
@click.option(
    "--since", type=opt.SINCE, default=None, help="epoch s, ISO date/time or age (48h); default 24h"
)
@click.option("--dry-run", is_flag=True, help="report the decisions, change nothing")
def reconcile_command(since: int | None, dry_run: bool) -> None:
    """Compare paid packs at the payment provider with the ledger and settle the unlanded.
    Creates no ledger (exit 3 where there is none; a dry run changes nothing at all). Exit 5
    when the provider failed for a purchase, left undecided (listed in ``undecided``)."""
    from workers.sweeps import run_reconciliation

    runtime.stripe_api()  # no key: refused before anything is opened
    runtime.ledger(create=False)
    _init_sentry()  # its alerts, as the scheduler's run raises them
    report = run_reconciliation(since, dry_run=dry_run)
    for decision in report.decisions:
        click.echo(json.dumps(decision))
    summary: dict[str, object] = {
        "seen": report.seen,
        "decisions": len(report.decisions),
        "dry_run": dry_run,
    }
    if report.undecided:
        summary["undecided"] = report.undecided
    click.echo(json.dumps(summary))
    if report.undecided:
        sys.exit(exit_codes.UNAVAILABLE)  # the same command may succeed later


@main.command()
@click.option("--generations", type=opt.GENERATIONS, default=3000, show_default=True)
@click.option("-p", "--processes", type=opt.PROCESSES, default=2, show_default=True)
@click.option("-t", "--threads", type=opt.THREADS, default=8, show_default=True)
@click.option("--timeout", "timeout_s", type=opt.TIMEOUT_S, default=600.0, show_default=True)
@click.option("--seed", default=7, show_default=True)
def demo(generations: int, processes: int, threads: int, timeout_s: float, seed: int) -> None:
    """Charge and report thousands of generations end to end; print one JSON line."""
    from workers.demo import run_demo

    sys.exit(run_demo(generations, processes, threads, timeout_s, seed))


@main.command()
@click.option("--events", type=opt.EVENTS, default=10_000, show_default=True, help="per phase")
@click.option("--storm", type=opt.EVENTS, default=None, help="report N failures at once instead")
@click.option("--rate", type=opt.RATE, default=200.0, show_default=True, help="offered events/s")
@click.option(
    "--latency-events",
    type=opt.EVENTS,
    default=None,
    help="events at the offered rate  [default: 5 s of them, at most --events]",
)
@click.option(
    "-p",
    "--processes",
    type=opt.PROCESSES,
    default=2,
    show_default=True,
    help="worker (or web) processes",
)
@click.option("-t", "--threads", type=opt.THREADS, default=8, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="the figures as JSON, the last stdout line")
@click.option("--ingress", is_flag=True, help="measure verified webhooks/s of refundry web")
@click.option(
    "--deliveries", type=opt.DELIVERIES, default=20000, show_default=True, help="with --ingress"
)
@click.option(
    "--concurrency", type=opt.CONCURRENCY, default=32, show_default=True, help="with --ingress"
)
def bench(
    events: int,
    storm: int | None,
    rate: float,
    latency_events: int | None,
    processes: int,
    threads: int,
    as_json: bool,
    ingress: bool,
    deliveries: int,
    concurrency: int,
) -> None:
    """Refundry's refunds/s against bare dramatiq and a hand-written peer (same Redis, same
    database, same processes and threads), refund latency at a fixed rate, worker memory.
    With --storm N: N failures reported at once, timed until all are refunded, then the
    ledger check. With --ingress: signed webhooks posted to a local refundry web."""
    if ingress:
        from workers.bench_ingress import run_ingress_bench

        sys.exit(run_ingress_bench(deliveries, concurrency, processes))
    from workers.bench_pipeline import run_bench, run_storm

    if storm is not None:
        sys.exit(run_storm(storm, processes, threads, as_json))
    paced = latency_events if latency_events is not None else min(events, round(rate * 5))
    sys.exit(run_bench(events, rate, paced, processes, threads, as_json))


@main.command()
@click.option("--events", type=opt.EVENTS, default=2000, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="the figures as JSON, the last stdout line")
@click.option("--workers", type=opt.PROCESSES, default=3, show_default=True, help="worker groups")
@click.option("-t", "--threads", type=opt.THREADS, default=4, show_default=True)
@click.option("--kills", type=click.IntRange(0, 10_000), default=None, help="worker SIGKILLs")
@click.option("--redis-restarts", type=click.IntRange(0, 1000), default=None)
@click.option("--postgres-restarts", type=click.IntRange(0, 1000), default=None)
@click.option("--timeout", "timeout_s", type=opt.TIMEOUT_S, default=1800.0, show_default=True)
def chaos(
    events: int,
    seed: int,
    as_json: bool,
    workers: int,
    threads: int,
    kills: int | None,
    redis_restarts: int | None,
    postgres_restarts: int | None,
    timeout_s: float,
) -> None:
    """A seeded adversarial run on a real Redis and PostgreSQL: workers SIGKILLed, Redis and
    PostgreSQL restarted, Stripe and providers failing; then the audit (exit 1 on any
    violation). Runs from a checkout: it starts the test suite's servers and fakes."""
    from workers.chaos import default_faults, run_chaos

    defaults = default_faults(events)
    faults = (
        defaults[0] if kills is None else kills,
        defaults[1] if redis_restarts is None else redis_restarts,
        defaults[2] if postgres_restarts is None else postgres_restarts,
    )
    home = runtime.settings().home / f"chaos-{seed}"
    sys.exit(
        run_chaos(
            events,
            seed,
            as_json=as_json,
            workers=workers,
            threads=threads,
            faults=faults,
            timeout_s=timeout_s,
            home=home,
        )
    )


if __name__ == "__main__":
    main()
