"""The inbox sweep: events that stayed unprocessed past a grace period are enqueued again.

The broker can lose a message (a failed retry enqueue is acked and dropped, dramatiq PR
#545; a crash between the inbox write and the enqueue; a flushed Redis) or hold it for
minutes (a dead worker's unacked messages wait for heartbeat expiry). The inbox row is the
record, so the sweep re-derives what is still owed from the database. Enqueueing twice is
safe: every effect is keyed in the ledger.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ledger import Ledger, now_ms

__all__ = ["InboxSweepResult", "sweep_inbox"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InboxSweepResult:
    requeued: int
    failed_to_enqueue: int
    gave_up: int


def sweep_inbox(
    ledger: Ledger,
    enqueue: Callable[[str, str], None],
    *,
    grace_ms: int,
    give_up_ms: int,
    limit: int = 500,
) -> InboxSweepResult:
    """Enqueue again (``enqueue(kind, inbox_id)``) every row pending for over ``grace_ms``.

    A row whose enqueue fails stays claimed until the next grace period passes, then is
    taken again: nothing is dropped. A row still pending ``give_up_ms`` after it arrived
    (a result for a charge that never existed, say) is closed as dead, with its reason, for
    the on-call engineer; it has raised SLA alerts long before.
    """
    rows = ledger.inbox.claim_stale(older_than_ms=grace_ms, limit=limit)
    failed = gave_up = 0
    now = now_ms()
    for row in rows:
        age_ms = now - int(row["received_at_ms"])
        if age_ms > give_up_ms:
            ledger.dead.record(
                message_id=row["id"],
                actor="inbox_sweep",
                queue="inbox",
                reason=f"InboxGaveUp age_ms={age_ms} deliveries={row['enqueue_count']}",
                error_class="InboxGaveUp",
                message=json.dumps({"inbox_id": row["id"]}),
                inbox_id=row["id"],
                permanent=True,
            )
            gave_up += 1
            continue
        try:
            enqueue(row["kind"], row["id"])
        except Exception:
            failed += 1
            log.exception("inbox sweep could not enqueue %s; it will be retried", row["id"])
    requeued = len(rows) - failed - gave_up
    if rows:
        log.warning(
            "inbox sweep: %d re-enqueued, %d gave up, %d failed to enqueue",
            requeued,
            gave_up,
            failed,
        )
    return InboxSweepResult(requeued=requeued, failed_to_enqueue=failed, gave_up=gave_up)
