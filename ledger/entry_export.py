"""The ledger's entries for finance (``refundry ledger export``): every entry written in a
time range, read in keyset pages so memory stays bounded however many there are, each as a
flat record with its key, cause, event type, account, amount, policy version and times."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from ledger.backends import Database, Row
from ledger.outbox import entry_cause, event_type, iso_ms, webhook_id

__all__ = ["EXPORT_COLUMNS", "entries_between", "export_record"]

EXPORT_COLUMNS: Final[tuple[str, ...]] = (
    "entry_id",
    "idempotency_key",
    "kind",
    "cause",
    "event_type",
    "webhook_id",
    "account_id",
    "amount",
    "generation_id",
    "purchase_key",
    "policy_version",
    "reason",
    "created_at",
    "applied_at",
    "failure_known_at",
)
"""The fields of an exported entry, in order (CSV's header). ``amount`` is whole credits,
negative when taken; times are ISO 8601 UTC with milliseconds; ``webhook_id`` is the event
out's id, so an export and a platform's received events can be matched."""


def entries_between(
    db: Database, *, since_ms: int, until_ms: int, batch: int = 1000
) -> Iterator[Row]:
    """Every entry written in ``[since_ms, until_ms)``, by id, ``batch`` rows per read."""
    after = 0
    while True:
        with db.read() as tx:
            rows = tx.all(
                "entries_between", after_id=after, since_ms=since_ms, until_ms=until_ms, limit=batch
            )
        yield from rows
        if len(rows) < batch:
            return
        after = int(rows[-1]["id"])


def export_record(entry: Row) -> dict[str, Any]:
    """An entry row as the flat record of :data:`EXPORT_COLUMNS`."""
    kind, key = str(entry["kind"]), str(entry["idempotency_key"])
    return {
        "entry_id": int(entry["id"]),
        "idempotency_key": key,
        "kind": kind,
        "cause": entry_cause(kind, key),
        "event_type": event_type(kind, key),
        "webhook_id": webhook_id(key),
        "account_id": entry["account_id"],
        "amount": int(entry["amount"]),
        "generation_id": entry["generation_id"],
        "purchase_key": entry.get("purchase_key"),
        "policy_version": entry["policy_version"],
        "reason": entry["reason"],
        "created_at": iso_ms(int(entry["created_at_ms"])),
        "applied_at": iso_ms(int(entry["applied_at_ms"])),
        "failure_known_at": iso_ms(entry["failure_known_at_ms"]),
    }
