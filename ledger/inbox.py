"""The durable inbox: the record of every event that can move credits.

An event is written here before it is enqueued; its actor marks it processed in the same
transaction as its effect (``Ledger.settle(inbox_id=…)``). The broker is only the fast path:
``claim_stale`` hands a sweeper the rows that stayed pending past a grace period, to be
enqueued again. Applying one twice is harmless: the effects are keyed in the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.backends import Database, Row, Tx
from ledger.clock import now_ms
from ledger.redaction import redact, redact_text

__all__ = ["Inbox", "InboxItem", "NewEvent", "Recorded", "processed_in", "settle_in"]


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: str
    kind: str
    provider: str
    generation_id: str | None
    operation: str | None
    payload: dict[str, Any]
    received_at_ms: int
    enqueue_count: int
    state: str
    enqueued_at_ms: int = 0
    """Last sent to the broker (or, while a retry waits its backoff, when it will be)."""

    @classmethod
    def from_row(cls, row: Row) -> InboxItem:
        return cls(
            id=row["id"],
            kind=row["kind"],
            provider=row["provider"],
            generation_id=row["generation_id"],
            operation=row["operation"],
            payload=json.loads(row["payload"]),
            received_at_ms=int(row["received_at_ms"]),
            enqueue_count=int(row["enqueue_count"]),
            state=row["state"],
            enqueued_at_ms=int(row["enqueued_at_ms"]),
        )


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to keep (:meth:`Inbox.record_many`); ``payload`` is a JSON object."""

    id: str
    kind: str
    provider: str
    payload: dict[str, Any]
    generation_id: str | None = None
    operation: str | None = None
    delivery_key: str | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What :meth:`Inbox.record` kept: the row of the event's first delivery."""

    id: str
    new: bool
    """False for a redelivery of an event already kept (enqueue nothing)."""
    state: str
    deliveries: int


class Inbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        *,
        id: str,
        kind: str,
        provider: str,
        payload: dict[str, Any],
        generation_id: str | None = None,
        operation: str | None = None,
        delivery_key: str | None = None,
    ) -> Recorded:
        """Keep the event before it is enqueued (idempotent on ``id``).

        ``delivery_key`` is the event's delivery identity (``providers.deliveries``): a
        second delivery of the same event is not recorded again; its count goes up and the
        first delivery's row is returned (``new`` False), so the caller enqueues nothing.
        """
        event = NewEvent(id, kind, provider, payload, generation_id, operation, delivery_key)
        return self.record_many([event])[0]

    def record_many(self, events: Sequence[NewEvent]) -> list[Recorded]:
        """Keep several events in one transaction (a group commit), each as :meth:`record`
        keeps it; what was kept for each, in order. Nothing is kept if any fails."""
        at = now_ms()
        with self.db.write() as tx:
            return [_record_in(tx, event, at) for event in events]

    def redeliveries(self) -> int:
        """How many deliveries were recognised as repeats of an event already kept."""
        with self.db.read() as tx:
            row = tx.one("redeliveries")
        return int(row["n"]) if row else 0

    def get(self, id: str) -> InboxItem | None:
        with self.db.read() as tx:
            row = tx.one("inbox_by_id", id=id)
        return InboxItem.from_row(row) if row else None

    def pending_results(
        self, *, provider: str, generation_id: str, received_by_ms: int
    ) -> list[InboxItem]:
        """Results of ``provider`` kept by ``received_by_ms`` and not applied yet that may be
        ``generation_id``'s: those reported for it, and those reported by job id alone (the
        caller matches their job), oldest first (then by id)."""
        kept_for = {"provider": provider, "generation_id": generation_id}
        with self.db.read() as tx:
            rows = tx.all("pending_results_for", received_by_ms=received_by_ms, **kept_for)
        return [InboxItem.from_row(r) for r in rows]

    def mark_processed(self, id: str) -> None:
        """For events that change nothing (pending results): processed, on their own."""
        with self.db.write() as tx:
            settle_in(tx, id, state="processed")

    def defer(self, id: str, *, until_ms: int) -> None:
        """The broker holds this event until ``until_ms`` (a retry waiting its backoff): the
        sweep leaves it alone until then instead of sending a second copy."""
        with self.db.write() as tx:
            tx.all("defer_inbox", id=id, until_ms=until_ms)

    def claim_stale(
        self, *, older_than_ms: int, limit: int = 500, at_ms: int | None = None
    ) -> list[Row]:
        """Pending rows last enqueued before ``now - older_than_ms``; each is claimed (its
        enqueue time moves to now) so that concurrent sweepers do not both take it.
        ``at_ms`` replaces the clock (tests)."""
        now = now_ms() if at_ms is None else at_ms
        with self.db.write() as tx:
            return tx.all(
                "claim_stale_inbox", now_ms=now, stale_before_ms=now - older_than_ms, limit=limit
            )

    def counts(self) -> dict[str, dict[str, int]]:
        """``state → {"n": count, "oldest_ms": received time of the oldest}``."""
        with self.db.read() as tx:
            rows = tx.all("inbox_counts")
        return {r["state"]: {"n": int(r["n"]), "oldest_ms": int(r["oldest_ms"])} for r in rows}


def _record_in(tx: Tx, event: NewEvent, at_ms: int) -> Recorded:
    params = {
        "id": event.id,
        "kind": event.kind,
        "provider": event.provider,
        "generation_id": event.generation_id,
        "operation": event.operation,
        "payload": json.dumps(event.payload, sort_keys=True),
        "now_ms": at_ms,
    }
    if event.delivery_key is None:
        tx.all("insert_inbox", **params)
        return Recorded(id=event.id, new=True, state="pending", deliveries=1)
    row = tx.one("insert_inbox_delivery", delivery_key=event.delivery_key, **params)
    assert row is not None  # an upsert always returns its row
    deliveries = int(row["deliveries"])
    if row["state"] == "dead":
        # The event was dead-lettered (its cause fixed since, or a forged event took its
        # identity first): this delivery gets its own chance, under the same row.
        tx.all(
            "reopen_dead_inbox",
            id=row["id"],
            payload=params["payload"],
            generation_id=event.generation_id,
            operation=event.operation,
            now_ms=at_ms,
        )
        tx.all("delete_dead_letter", message_id=row["id"])
        return Recorded(id=row["id"], new=True, state="pending", deliveries=deliveries)
    return Recorded(id=row["id"], new=deliveries == 1, state=row["state"], deliveries=deliveries)


def settle_in(tx: Tx, id: str, *, state: str, dead_reason: str | None = None) -> None:
    """Mark a pending inbox row ``processed`` or ``dead`` inside the caller's transaction
    (a compare-and-set: a row already settled is left as it is).

    Retention: a processed row keeps only the redacted payload (``ledger.redaction``), written
    in the same transaction as its effect, so API keys and signed URLs a provider echoed are
    not kept once the event is applied. A dead row keeps its raw payload, which a replay
    needs, until an engineer replays or purges it; its reason is stored redacted. An event
    processed after a transient dead letter marks that dead letter resolved.
    """
    row = tx.one("pending_inbox_payload", id=id)
    if row is None:
        return
    payload = str(row["payload"])
    if state == "processed":
        payload = json.dumps(redact(json.loads(payload)), sort_keys=True)
    tx.all(
        "settle_inbox",
        id=id,
        state=state,
        dead_reason=None if dead_reason is None else redact_text(dead_reason),
        payload=payload,
        now_ms=now_ms(),
    )
    if state == "processed":  # applied after all: its dead letter (same id) is resolved
        tx.all("resolve_dead_letter", message_id=id, now_ms=now_ms())


def processed_in(tx: Tx, id: str | None) -> None:
    """Mark the event whose effect ``tx`` applies as processed, in ``tx`` (no-op for ``None``)."""
    if id is not None:
        settle_in(tx, id, state="processed")
