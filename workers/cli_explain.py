"""``refundry explain ID`` and ``refundry eligibility PURCHASE_ID``: what Refundry decided
about a generation or a purchase and why, and whether a refund a customer asks for
qualifies. Both read the ledger only; an id the ledger does not know is one line on stderr
and exit 3 (``NothingKnownById``)."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from handlers.explanations import Explanation, explain
from handlers.manual_refunds import eligibility
from handlers.policy_rules import rfc3339
from ledger.clock import now_ms
from ledger.history import History
from workers import runtime, validation
from workers.cli_policy import Moment

__all__ = ["eligibility_command", "explain_command"]


@click.command("explain")
@click.argument("id")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
def explain_command(id: str, as_json: bool) -> None:
    """What Refundry decided about a generation id or a purchase id (PaymentIntent, Checkout
    Session, charge): under which policy version and rule, when, and the entries it wrote."""
    id = validation.identifier(id, field="id")
    history = History(runtime.ledger(create=False).db)
    shown = explain(history, runtime.policy_book(), id)
    if as_json:
        click.echo(json.dumps(shown.as_json(), sort_keys=True))
        return
    _render(shown)


@click.command("eligibility")
@click.argument("purchase_id")
@click.option("--at", "at_ms", type=Moment(), default=None, help="asked at (ISO date); default now")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
def eligibility_command(purchase_id: str, at_ms: int | None, as_json: bool) -> None:
    """Whether a refund request for a purchase qualifies under the policy version in force
    when it was paid ([version.manual_refunds]: window, share of the pack used), and why.
    Decides nothing and writes nothing."""
    purchase_id = validation.identifier(purchase_id, field="purchase_id")
    history = History(runtime.ledger(create=False).db)
    asked = now_ms() if at_ms is None else at_ms
    answer = eligibility(history, runtime.policy_book(), purchase_id, asked_at_ms=asked)
    if as_json:
        click.echo(json.dumps(answer.as_json(), sort_keys=True))
        return
    paid = "never" if answer.paid_at_ms is None else rfc3339(answer.paid_at_ms)
    click.echo(f"purchase {answer.purchase_key} (account {answer.account_id}), paid {paid}")
    click.echo(f"judged by policy version {answer.policy_version} (in force at the payment)")
    for why in answer.reasons:
        click.echo(f"  - {why}")
    click.echo("qualifies" if answer.qualifies else "does not qualify")


def _render(shown: Explanation) -> None:
    console = Console(width=max(100, Console().width), highlight=False, soft_wrap=False)
    console.print(f"[bold]{shown.kind} {shown.id}[/bold]", markup=True)
    for name, value in shown.facts.items():
        if value is not None:
            console.print(f"  {name}: {value}", markup=False)
    if shown.judged_by is not None:
        console.print(f"  judged by policy version: {shown.judged_by}", markup=False)
    console.print(f"decided: {shown.verdict}", markup=False)
    decisions = Table("at", "decision", "reason", "version", "rule", title="decisions")
    decisions.columns[2].overflow = "fold"  # a reason is shown whole, never cut
    for d in shown.decisions:
        decisions.add_row(
            rfc3339(d.at_ms), d.decision, d.reason, d.policy_version or "-", d.rule or "-"
        )
    entries = Table("key", "kind", "amount", "version", "applied at", title="ledger entries")
    for e in shown.entries:
        entries.add_row(
            e.idempotency_key, e.kind, f"{e.amount:+d}", e.policy_version, rfc3339(e.applied_at_ms)
        )
    console.print(decisions)
    console.print(entries if shown.entries else "ledger entries: none", markup=False)
