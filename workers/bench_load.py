"""The load ``refundry bench`` puts on the ledger: charged generations, their failed results.

Generations are charged many to a transaction (setup, not measured). Results are reported
the way the ingress keeps them under load: several events per inbox transaction (a group
commit), each then enqueued with its own message, whose id is its inbox id. The refunds
are counted in the ledger itself, never in the bench's own bookkeeping.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from handlers.intake import announce, new_event
from ledger import Ledger
from workers import client, runtime
from workers.demo_payloads import demo_payload

__all__ = [
    "ACCOUNTS",
    "Load",
    "count_pending",
    "count_refunds_since",
]

ACCOUNTS = 100
"""Refunds are spread over this many accounts, as a platform's customers spread them."""
CHARGE_CHUNK = 500
REPORT_CHUNK = 200
CREDITS = 7


@dataclass
class Load:
    """Charged generations of one bench run (``bench-<run>-<i>``, Kling video jobs)."""

    ledger: Ledger
    run: str

    @classmethod
    def new(cls, ledger: Ledger) -> Load:
        return cls(ledger, uuid.uuid4().hex[:8])

    def generation(self, i: int) -> str:
        return f"bench-{self.run}-{i}"

    def account(self, i: int) -> str:
        return f"bench-{self.run}-acct-{i % ACCOUNTS}"

    def charge(self, first: int, count: int, progress: Callable[[int], None] = print) -> None:
        """Charge generations ``first`` … ``first + count - 1``, ``CHARGE_CHUNK`` to a
        transaction; each account is topped up first, under the run's own key."""
        for a in range(min(ACCOUNTS, first + count)):
            client.grant(
                account_id=self.account(a),
                credits=CREDITS * (first + count),
                idempotency_key=f"bench-{self.run}-{first}-{a}",
                reason="bench top-up",
            )
        deadline = runtime.deadlines().for_generation("kling", "video")
        for start in range(first, first + count, CHARGE_CHUNK):
            stop = min(start + CHARGE_CHUNK, first + count)
            with self.ledger.db.write() as tx:
                for i in range(start, stop):
                    self.ledger.charge(
                        generation_id=self.generation(i),
                        account_id=self.account(i),
                        provider="kling",
                        operation="video",
                        credits=CREDITS,
                        provider_job_id=f"{self.generation(i)}-job",
                        poll_after_ms=deadline.poll_after_ms,
                        deadline_after_ms=deadline.hard_ms,
                        tx=tx,
                    )
            progress(stop - start)

    def report_failed(self, indices: Iterable[int], chunk: int = REPORT_CHUNK) -> int:
        """Report the failure of each generation (``chunk`` inbox rows per transaction, then
        one message each); returns how many were reported."""
        batch: list[int] = []
        reported = 0
        for i in indices:
            batch.append(i)
            if len(batch) == chunk:
                reported += self._report(batch)
                batch = []
        if batch:
            reported += self._report(batch)
        return reported

    def _report(self, indices: list[int]) -> int:
        events = [
            new_event(
                kind="result",
                provider="kling",
                payload=demo_payload("kling", f"{self.generation(i)}-job", "failed"),
                generation_id=self.generation(i),
            )
            for i in indices
        ]
        for recorded in self.ledger.inbox.record_many(events):
            announce(runtime.enqueue, "result", recorded)
        return len(events)

    def report_paced(self, indices: list[int], rate_per_s: float) -> None:
        """Report one failure at a time (``workers.client``), at ``rate_per_s``: the i-th at
        ``i / rate_per_s`` seconds from the start, however long the earlier ones took."""
        started = time.monotonic()
        for n, i in enumerate(indices):
            wait = started + n / rate_per_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # pacing the offered load, not waiting on a condition
            client.report_result(
                provider="kling",
                payload=demo_payload("kling", f"{self.generation(i)}-job", "failed"),
                generation_id=self.generation(i),
            )


def count_refunds_since(ledger: Ledger, since_ms: int) -> int:
    """Refunds committed since ``since_ms`` (epoch ms), counted in the ledger."""
    with ledger.db.read() as tx:
        row = tx.one("count_refunds_since", since_ms=since_ms)
    return int(row["n"]) if row else 0


def count_pending(ledger: Ledger) -> int:
    """Inbox rows not applied yet."""
    with ledger.db.read() as tx:
        row = tx.one("count_pending_inbox")
    return int(row["n"]) if row else 0
