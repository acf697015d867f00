"""The inbox sweep: events that stayed unprocessed past a grace period are enqueued again.

The broker can lose a message (a failed retry enqueue is acked and dropped, dramatiq PR
#545; a crash between the inbox write and the enqueue; a flushed Redis) or hold it for
minutes (a dead worker's unacked messages wait for heartbeat expiry). The inbox row is the
record, so the sweep re-derives what is still owed from the database. Enqueueing twice is
safe: every effect is keyed in the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ledger import Ledger

__all__ = ["InboxSweepResult", "sweep_inbox"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InboxSweepResult:
    requeued: int
    failed_to_enqueue: int


def sweep_inbox(
    ledger: Ledger,
    enqueue: Callable[[str, str], None],
    *,
    grace_ms: int,
    limit: int = 500,
) -> InboxSweepResult:
    """Enqueue again (``enqueue(kind, inbox_id)``) every row pending for over ``grace_ms``.

    A row whose enqueue fails stays claimed until the next grace period passes, then is
    taken again: nothing is dropped.
    """
    rows = ledger.inbox.claim_stale(older_than_ms=grace_ms, limit=limit)
    failed = 0
    for row in rows:
        try:
            enqueue(row["kind"], row["id"])
        except Exception:
            failed += 1
            log.exception("inbox sweep could not enqueue %s; it will be retried", row["id"])
    if rows:
        log.warning("inbox sweep re-enqueued %d stale events", len(rows) - failed)
    return InboxSweepResult(requeued=len(rows) - failed, failed_to_enqueue=failed)
