"""``refundry ledger …`` and ``refundry dlq …``: the commands an on-call engineer runs
against the ledger. Only ``ledger migrate`` may create a ledger; the others say there is
none (exit 3) instead."""

from __future__ import annotations

import csv
import errno
import json
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import TextIO

import click

from ledger import audit, migrate, open_database
from ledger.backends import Row
from ledger.entry_export import EXPORT_COLUMNS, entries_between, export_record
from ledger.errors import AccountNotFound
from workers import cli_options as opt
from workers import dead_letter_operations, exit_codes, runtime, validation

__all__ = ["dlq", "ledger"]


@click.group()
def ledger() -> None:
    """Ledger operations: migrate, check, balance, export."""


@ledger.command("migrate")
def ledger_migrate() -> None:
    """Apply pending schema migrations (creating the ledger if there is none)."""
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
    window_ms = runtime.settings().landing_window_s * 1000
    violations = audit(runtime.ledger(create=False).db, landing_window_ms=window_ms)
    if not violations:
        click.echo("ok")
        return
    for v in violations:
        click.echo(str(v))
    sys.exit(exit_codes.VIOLATIONS)


@ledger.command("balance")
@click.argument("account")
@click.option("--kinds", is_flag=True, help="also the held credits and each credit kind")
def ledger_balance(account: str, kinds: bool) -> None:
    """Print an account's balance. An account the ledger has never seen prints 0 too, but
    says so on stderr and exits 3. With --kinds, then the credits pending holds reserve
    (``held N``) and one line per credit kind (``kind <name> <balance> held <n>``)."""
    account = validation.identifier(account, field="account_id")
    book = runtime.ledger(create=False)
    found = book.find_balance(account)
    click.echo(str(found or 0))
    if kinds and found is not None:
        funds = book.funds(account)
        click.echo(f"held {funds.held}")
        for name, (balance, held) in sorted(funds.kinds.items()):
            click.echo(f"kind {name} {balance} held {held}")
    if found is None:
        raise AccountNotFound(account_id=account, location=runtime.ledger_location())


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""A CSV cell starting so is a formula to a spreadsheet: text cells get a leading ``'``
(OWASP's CSV injection advice); numbers are written as numbers."""


def _csv_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


@ledger.command("export")
@click.option(
    "--since",
    type=opt.SINCE_MS,
    required=True,
    help="epoch s, ISO time or age (48h), to the ms",
)
@click.option(
    "--until",
    type=opt.UNTIL_MS,
    default=None,
    help="epoch s or ISO time, ahead allowed; default now",
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="jsonl", show_default=True
)
def ledger_export(since: int, until: int | None, fmt: str) -> None:
    """Every entry written from --since up to --until (excluded) to stdout, oldest first,
    streamed in pages: its key, cause, event type, account, amount, policy version, times.
    Both bounds are honoured to the millisecond (the ledger's resolution); an --until ahead
    of now exports up to now."""
    until_ms = time.time_ns() // 1_000_000 + 1 if until is None else until
    if until_ms < since:
        raise click.BadParameter("before --since", param_hint="--until")
    db = runtime.ledger(create=False).db
    rows = entries_between(db, since_ms=since, until_ms=until_ms)
    try:
        _write_export(rows, fmt, sys.stdout)
        sys.stdout.flush()
    except OSError as exc:
        # Nothing more can reach stdout, nor be flushed at exit: point it at the null device.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        if exc.errno == errno.EPIPE:
            sys.exit(1)  # the reader left (``| head``): quietly, as click does
        click.echo(f"refundry: the export could not be written: {exc.strerror}", err=True)
        sys.exit(exit_codes.UNAVAILABLE)  # a full disk: the same export may succeed later


def _write_export(rows: Iterable[Row], fmt: str, out: TextIO) -> None:
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(export_record(row), ensure_ascii=False) + "\n")
        return
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in export_record(row).items()})


@click.group()
def dlq() -> None:
    """Dead letters: list, show, replay, purge."""


@dlq.command("list")
@click.option("--queue", default=None, help="Only this queue's dead letters.")
@click.option("--reason", default=None, help="Only this error class (e.g. Unclassifiable).")
@click.option("--provider", default=None, help="Only this provider's events.")
def dlq_list(queue: str | None, reason: str | None, provider: str | None) -> None:
    """One JSON line per dead letter: message id, reason, when."""
    filters = dead_letter_operations.Filters(queue=queue, reason=reason, provider=provider)
    for letter in dead_letter_operations.listed(runtime.ledger(create=False), filters):
        click.echo(json.dumps(letter.summary()))


@dlq.command("show")
@click.argument("message_id")
def dlq_show(message_id: str) -> None:
    """The whole dead letter (its message is stored redacted)."""
    letter = dead_letter_operations.find(runtime.ledger(create=False), message_id)
    click.echo(json.dumps(asdict(letter)))


@dlq.command("replay")
@click.argument("message_id")
def dlq_replay(message_id: str) -> None:
    """Put the dead letter's event back in the inbox and enqueue it again (if Redis cannot
    be reached, the inbox sweep delivers it)."""
    from workers.actors import enqueue_event

    done = dead_letter_operations.replay(
        runtime.ledger(create=False), message_id, enqueue=enqueue_event
    )
    if done.not_enqueued:
        click.echo(f"refundry: not enqueued ({done.not_enqueued}); the inbox sweep will", err=True)
    click.echo(json.dumps({"replayed": done.message_id, "enqueued": done.enqueued}))


@dlq.command("purge")
@click.argument("message_id")
def dlq_purge(message_id: str) -> None:
    """Forget a dead letter (its event stays closed in the inbox)."""
    letter = dead_letter_operations.purge(runtime.ledger(create=False), message_id)
    click.echo(json.dumps({"purged": letter.message_id}))
