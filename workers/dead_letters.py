"""Dead letters with their reason, kept in the ledger database.

dramatiq's own dead-letter queue keeps the message for 7 days, without the reason; the
on-call engineer needs the reason, and the record must outlive Redis. An actor runs its
handler through ``dead_letter_on_final_failure``: when the error will not be retried, the
reason and the redacted event are written before dramatiq nacks the message. A permanent
error closes the inbox row; a spent retry budget leaves it pending for the inbox sweep.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import TypeVar

from dramatiq.middleware import CurrentMessage

from handlers.alerts import alert
from ledger import now_ms
from ledger.errors import RefundryError
from ledger.redaction import redact, redact_text
from workers import runtime

__all__ = ["dead_letter_on_final_failure", "reason_of"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def reason_of(exc: BaseException) -> str:
    """Machine-readable: ``ClassName field=value …``."""
    if isinstance(exc, RefundryError):
        return exc.reason
    return redact_text(f"{exc.__class__.__name__} {exc}".strip())


def dead_letter_on_final_failure(
    run: Callable[[], T],
    *,
    inbox_id: str | None,
    should_retry: Callable[[int, BaseException], bool],
) -> T:
    message = CurrentMessage.get_current_message()
    try:
        return run()
    except Exception as exc:
        if message is None:
            raise
        retries = int(message.options.get("retries", 0))
        if should_retry(retries, exc):
            _defer_sweep(inbox_id)
            raise
        ledger = runtime.ledger()
        item = ledger.inbox.get(inbox_id) if inbox_id else None
        body = json.dumps(
            {
                "event": redact(asdict(item)) if item else None,
                "args": redact(list(message.args)),
                "kwargs": redact(dict(message.kwargs)),
            },
            sort_keys=True,
            default=str,
        )
        opened = ledger.dead.record(
            message_id=message.message_id,
            actor=message.actor_name,
            queue=message.queue_name,
            reason=reason_of(exc),
            error_class=exc.__class__.__name__,
            message=body,
            inbox_id=inbox_id,
            permanent=isinstance(exc, RefundryError) and exc.permanent,
        )
        log.error("dead-lettered %s: %s", message.message_id, reason_of(exc))
        if not opened:  # still open from an earlier delivery: it has paged once already
            raise
        alert(
            "dead-letter",
            f"dead-lettered: {reason_of(exc)}",
            provider=item.provider if item else "unknown",
            reason=exc.__class__.__name__,  # the reason's stable part: one issue per cause
            queue=message.queue_name,
            about={"inbox_id": inbox_id, "generation_id": item.generation_id if item else None},
        )
        raise


def _defer_sweep(inbox_id: str | None) -> None:
    """dramatiq will retry this message within one maximum backoff: keep the inbox sweep
    from sending a parallel copy meanwhile. If the broker loses the retry, the sweep still
    delivers the event once that time has passed, well inside the SLA."""
    if inbox_id is None:
        return
    settings = runtime.settings()
    try:
        runtime.ledger().inbox.defer(inbox_id, until_ms=now_ms() + settings.max_backoff_ms)
    except Exception:  # the ledger may be the very thing that failed; the retry still runs
        log.warning("could not defer the inbox sweep of %s", inbox_id, exc_info=True)
