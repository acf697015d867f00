"""Taking an event in: keep it in the inbox, then ring the broker's doorbell.

The one place where a reported event (from ``workers.client`` or the HTTP ingress) becomes
durable. The inbox row is committed before anything is enqueued; a redelivery of an event
already kept (same delivery identity, ``providers.deliveries``) is counted and enqueues
nothing. A failed enqueue is logged, not raised: the row is durable and the inbox sweep
sends it. The broker is reached only through the ``enqueue`` callable the caller passes,
so this module stays free of dramatiq.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from ledger import Ledger
from ledger.inbox import Recorded
from providers.deliveries import delivery_key

__all__ = ["Enqueue", "record_and_enqueue"]

log = logging.getLogger(__name__)

Enqueue = Callable[[str, str], None]
"""``(kind, inbox_id) -> None``: send the inbox event to its actor."""


def record_and_enqueue(
    ledger: Ledger,
    enqueue: Enqueue,
    *,
    kind: str,
    provider: str,
    payload: dict[str, Any],
    generation_id: str | None = None,
    operation: str | None = None,
    webhook_id: str | None = None,
) -> Recorded:
    """Keep ``payload`` (a JSON object) in the inbox, then enqueue it unless it is a
    redelivery. ``webhook_id`` is the provider's delivery id when the transport has one
    (Standard Webhooks ``webhook-id``, fal's request id). Returns what the inbox kept; a
    database error propagates (nothing was kept)."""
    recorded = ledger.inbox.record(
        id=uuid.uuid4().hex,
        kind=kind,
        provider=provider,
        payload=payload,
        generation_id=generation_id,
        operation=operation,
        delivery_key=delivery_key(provider, payload, operation=operation, webhook_id=webhook_id),
    )
    if not recorded.new:  # a redelivery: the first delivery is applied (or being applied)
        log.info(
            "redelivery %d of %s recognised; not enqueued again", recorded.deliveries, recorded.id
        )
        return recorded
    try:
        enqueue(kind, recorded.id)
    except Exception:
        log.exception("enqueue of %s failed; the inbox sweep will deliver it", recorded.id)
    return recorded
