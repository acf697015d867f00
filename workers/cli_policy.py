"""``refundry policy …``: the refund policy in force, and checking a policy file before it
is deployed. A file that cannot be used is one line naming the key and its line (exit 4,
as a worker given it refuses to start)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from handlers.policy_file import read_policy
from handlers.policy_rules import PolicyBook, PolicyVersion, rfc3339
from ledger.clock import now_ms
from workers import runtime
from workers.policy_settings import check_budgets
from workers.settings import Settings

__all__ = ["Moment", "policy"]


class Moment(click.ParamType[int, Any]):
    """``--at``: an ISO date or date-time (UTC when it gives no offset), as ms since the
    epoch; a future moment shows the version that will be in force then."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        try:
            moment = datetime.fromisoformat(str(value).strip())
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return int(moment.timestamp() * 1000)
        except (ValueError, OverflowError, OSError):
            self.fail(f"{value!r}: an ISO date or date-time (2026-03-01T12:00:00Z)", param, ctx)


@click.group()
def policy() -> None:
    """The refund policy: show the version in force, check a file."""


@policy.command("show")
@click.option("--at", "at_ms", type=Moment(), default=None, help="ISO date; default now")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
def policy_show(at_ms: int | None, as_json: bool) -> None:
    """Print the policy version in force (now, or --at a date) and every rule it holds."""
    book = runtime.policy_book()
    at = now_ms() if at_ms is None else at_ms
    version = book.at(at)
    if as_json:
        click.echo(json.dumps(_shown(book, version, at), sort_keys=True))
        return
    click.echo(f"policy: {book.source}")
    click.echo(f"in force at {rfc3339(at)}: {version.name} (effective {version.effective})")
    if version.overridden:
        click.echo(f"overridden by: {', '.join(version.overridden)}")
    for rule, value in version.rules.as_json().items():
        click.echo(f"  {rule} = {json.dumps(value)}")
    click.echo("versions:")
    for each in book.versions:
        click.echo(f"  {each.effective}  {each.name}{'  <- in force' if each is version else ''}")


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def policy_check(file: str) -> None:
    """Validate a policy file (and its promises against this environment's settings):
    prints each version, or the first error naming the key and its line (exit 4)."""
    book = read_policy(file)
    check_budgets(Settings.from_env(), book)
    for name, before in book.back_dated():
        click.echo(
            f"warning: version {name!r} takes effect no later than {before!r}, written before"
            " it: it changes the version in force for moments already past (generations"
            " already charged keep the version their charge recorded)",
            err=True,
        )
    click.echo(f"ok: {len(book.written)} version(s)")
    for version in book.versions:
        shipped = "" if version.name in book.written else "  (shipped default, in force before)"
        click.echo(f"  {version.effective}  {version.name}{shipped}")


def _shown(book: PolicyBook, version: PolicyVersion, at_ms: int) -> dict[str, Any]:
    return {
        "source": book.source,
        "at": rfc3339(at_ms),
        "version": {
            "name": version.name,
            "effective": version.effective,
            "overridden": list(version.overridden),
            "rules": version.rules.as_json(),
        },
        "versions": [{"name": v.name, "effective": v.effective} for v in book.versions],
    }
