"""Claiming a batch of pending inbox results inside one write transaction.

A worker that a message (the doorbell) wakes takes that message's inbox row and up to
``limit - 1`` other pending results, locks them for the transaction (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL: rows another worker holds are skipped, not waited for; on SQLite
``BEGIN IMMEDIATE`` already makes the transaction the only writer) and settles them all
before one commit. Each settlement is keyed by its cause and marks its own row processed,
in that same transaction (``Ledger.settle(tx=…)``): a crash before the commit leaves every
row pending, a crash after it leaves every row settled.

Rows whose backoff is running (``enqueued_at_ms`` in the future, ``Inbox.defer``) are left
to the retry dramatiq holds for them; rows enqueued less than ``fresh_ms`` ago are left to
their own messages, which are on their way: a batch takes the backlog, and at a low rate
each message settles its own row at once instead of waiting for another's batch.
"""

from __future__ import annotations

from ledger.backends import Tx
from ledger.clock import now_ms
from ledger.generations import Generation
from ledger.inbox import InboxItem

__all__ = ["FRESH_MS", "TxGenerations", "claim_results", "lock_generations"]


#: Rows enqueued more recently than this (ms) are not claimed for another message's batch.
FRESH_MS = 50


def claim_results(
    tx: Tx, *, first_id: str, limit: int, fresh_ms: int = FRESH_MS
) -> list[InboxItem]:
    """In the caller's write transaction: the pending row ``first_id`` first, then pending
    results due now, oldest first, ``limit`` rows at most. Each returned row is locked until
    ``tx`` ends. The row ``first_id`` is waited for while another transaction holds it
    (then it is settled, or left pending to this one); it is the transaction's first lock,
    so the wait cannot close a cycle. The others are skipped while held elsewhere."""
    first = tx.one("claim_pending_inbox", id=first_id)
    rows = [first] if first is not None and first["kind"] == "result" else []
    more = tx.all("claim_pending_results", now_ms=now_ms() - fresh_ms, limit=limit)
    rows += [row for row in more if row["id"] != first_id][: limit - len(rows)]
    return [InboxItem.from_row(row) for row in rows]


def lock_generations(tx: Tx, dialect: str, generation_ids: list[str]) -> None:
    """Lock the generations a batch settles, in one order every batch follows (by id),
    before any account: two batches refunding the same accounts then wait for each other
    instead of deadlocking. A no-op on SQLite, where the transaction is the only writer."""
    if dialect == "postgresql" and generation_ids:
        tx.all("lock_generations", generation_ids=sorted(set(generation_ids)))


class TxGenerations:
    """Generation reads inside an open transaction (on SQLite a thread has one connection,
    so reads during a batch must go through the batch's own transaction)."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def generation(self, generation_id: str) -> Generation | None:
        row = self._tx.one("generation_by_id", generation_id=generation_id)
        return Generation.from_row(row) if row else None

    def generation_by_job(self, provider: str, provider_job_id: str) -> Generation | None:
        row = self._tx.one(
            "generation_by_provider_job", provider=provider, provider_job_id=provider_job_id
        )
        return Generation.from_row(row) if row else None
