"""``refundry ledger …`` and ``refundry dlq …``: the commands an on-call engineer runs
against the ledger. Only ``ledger migrate`` may create a ledger; the others say there is
none (exit 3) instead."""

from __future__ import annotations

import json
import sys

import click
import dramatiq
import redis

from ledger import audit, migrate, open_database
from ledger.errors import AccountNotFound, DeadLetterNotFound
from workers import exit_codes, runtime, validation

__all__ = ["dlq", "ledger"]


@click.group()
def ledger() -> None:
    """Ledger operations: migrate, check, balance."""


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
def ledger_balance(account: str) -> None:
    """Print an account's balance. An account the ledger has never seen prints 0 too, but
    says so on stderr and exits 3."""
    account = validation.identifier(account, field="account_id")
    found = runtime.ledger(create=False).find_balance(account)
    click.echo(str(found or 0))
    if found is None:
        raise AccountNotFound(account_id=account, location=runtime.ledger_location())


@click.group()
def dlq() -> None:
    """Dead letters: list, show, replay, purge."""


@dlq.command("list")
def dlq_list() -> None:
    """One JSON line per dead letter: message id, reason, when."""
    for row in runtime.ledger(create=False).dead.all():
        click.echo(json.dumps({k: row[k] for k in ("message_id", "reason", "created_at_ms")}))


def _dead_letter_id(message_id: str) -> str:
    """``message_id`` checked, and naming a dead letter of the (existing) ledger."""
    message_id = validation.identifier(message_id, field="message_id")
    if runtime.ledger(create=False).dead.get(message_id) is None:
        raise DeadLetterNotFound("no dead letter", message_id=message_id)
    return message_id


@dlq.command("show")
@click.argument("message_id")
def dlq_show(message_id: str) -> None:
    """The whole dead letter (its message is stored redacted)."""
    row = runtime.ledger(create=False).dead.get(_dead_letter_id(message_id))
    click.echo(json.dumps(row, default=str))


@dlq.command("replay")
@click.argument("message_id")
def dlq_replay(message_id: str) -> None:
    """Put the dead letter's event back in the inbox and enqueue it again (if Redis cannot
    be reached, the inbox sweep delivers it)."""
    from workers.actors import enqueue_event

    message_id = _dead_letter_id(message_id)
    kind = runtime.ledger().dead.release(message_id, reopen=True)
    enqueued = False
    if kind is not None:
        try:
            enqueue_event(kind, message_id)
            enqueued = True
        except (redis.RedisError, dramatiq.errors.DramatiqError) as exc:
            reason = " ".join(str(exc).split())
            click.echo(f"refundry: not enqueued ({reason}); the inbox sweep will", err=True)
    click.echo(json.dumps({"replayed": message_id, "enqueued": enqueued}))


@dlq.command("purge")
@click.argument("message_id")
def dlq_purge(message_id: str) -> None:
    """Forget a dead letter (its event stays closed in the inbox)."""
    message_id = _dead_letter_id(message_id)
    runtime.ledger().dead.release(message_id, reopen=False)
    click.echo(json.dumps({"purged": message_id}))
