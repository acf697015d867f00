"""What an on-call engineer does with dead letters, in one place: ``refundry dlq`` and the ops
page both call these functions (list with filters, show, replay, purge).

A dead letter's message id is its inbox event's id (``workers.actors.enqueue_event``), so
the provider is read from the inbox. Its message is stored redacted
(``ledger.dead_letters``); nothing here shows anything else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger import Ledger, now_ms
from ledger.errors import DeadLetterNotFound
from ledger.outbox import DeadEvent, Outbox
from ledger.redaction import redact, redact_text
from workers import validation
from workers.broker import BROKER_ERRORS

__all__ = ["DeadLetter", "Filters", "Replayed", "find", "listed", "purge", "replay"]

log = logging.getLogger(__name__)

Enqueue = Callable[[str, str], None]
"""``enqueue(kind, inbox_id)``: ``workers.actors.enqueue_event``."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One unresolved dead letter. ``reason`` is machine-readable (``ClassName field=…``);
    ``provider`` is None when its message named no inbox event; ``message`` is the
    redacted JSON text stored with it (empty in lists)."""

    message_id: str
    actor: str
    queue: str
    reason: str
    error_class: str
    provider: str | None
    created_at_ms: int
    message: str = ""

    def payload(self) -> Any:
        """The message as JSON (or its text when it is not JSON), redacted again with
        today's rules: a letter kept before a rule was added is shown with it applied."""
        try:
            return redact(json.loads(self.message))
        except ValueError:
            return redact_text(self.message)

    def summary(self) -> dict[str, Any]:
        """What ``refundry dlq list`` prints for it."""
        return {
            "message_id": self.message_id,
            "reason": self.reason,
            "created_at_ms": self.created_at_ms,
        }


@dataclass(frozen=True, slots=True)
class Filters:
    """Exact matches; None matches anything. ``reason`` is the error's class name."""

    queue: str | None = None
    reason: str | None = None
    provider: str | None = None

    def keep(self, letter: DeadLetter) -> bool:
        return all(
            wanted is None or wanted == value
            for wanted, value in (
                (self.queue, letter.queue),
                (self.reason, letter.error_class),
                (self.provider, letter.provider),
            )
        )


@dataclass(frozen=True, slots=True)
class Replayed:
    """``enqueued`` is False when its event was no longer pending (applied meanwhile), or
    when the broker could not be reached: the inbox sweep sends the event then
    (``not_enqueued`` says why)."""

    message_id: str
    enqueued: bool
    not_enqueued: str | None = None


def _letter(row: Any, message: str = "") -> DeadLetter:
    return DeadLetter(
        message_id=str(row["message_id"]),
        actor=str(row["actor"]),
        queue=str(row["queue"]),
        reason=str(row["reason"]),
        error_class=str(row["error_class"]),
        provider=None if row["provider"] is None else str(row["provider"]),
        created_at_ms=int(row["created_at_ms"]),
        message=message,
    )


def listed(ledger: Ledger, filters: Filters = Filters()) -> list[DeadLetter]:
    """The unresolved dead letters that ``filters`` keep, oldest first: the inbox's, then
    the events out that the platform's endpoint never took (queue ``events_out``)."""
    with ledger.db.read() as tx:
        rows = tx.all("ops_dead_letters_listed")
    letters = [*map(_letter, rows), *map(_event_letter, Outbox(ledger.db).dead_letters())]
    return [letter for letter in letters if filters.keep(letter)]


EVENT_PREFIX = "event:"
"""The message id of an event out's dead letter: ``event:<outbox id>``."""


def _event_letter(dead: DeadEvent) -> DeadLetter:
    return DeadLetter(
        message_id=f"{EVENT_PREFIX}{dead.outbox_id}",
        actor="events_out",
        queue="events_out",
        reason=dead.reason,
        error_class=dead.reason.split(" ", 1)[0],
        provider=None,
        created_at_ms=dead.dead_at_ms,
        message=json.dumps(dead.summary()),
    )


def _dead_event(ledger: Ledger, message_id: str) -> DeadLetter | None:
    """The event out's dead letter ``event:<id>``; None when ``message_id`` names none
    (``DeadLetterNotFound`` when it has the form but no such dead letter)."""
    if not message_id.startswith(EVENT_PREFIX):
        return None
    for dead in Outbox(ledger.db).dead_letters():
        if message_id == f"{EVENT_PREFIX}{dead.outbox_id}":
            return _event_letter(dead)
    raise DeadLetterNotFound("no dead letter", message_id=message_id)


def find(ledger: Ledger, message_id: str) -> DeadLetter:
    """One dead letter with its redacted message. Raises ``InvalidIdentifier`` for an id
    no event could have, ``DeadLetterNotFound`` when there is no such dead letter."""
    message_id = validation.identifier(message_id, field="message_id")
    event = _dead_event(ledger, message_id)
    if event is not None:
        return event
    row = ledger.dead.get(message_id)
    if row is None or row["resolved_at_ms"] is not None:
        raise DeadLetterNotFound("no dead letter", message_id=message_id)
    provider = ledger.inbox.get(message_id)
    return _letter(
        {**row, "provider": provider.provider if provider else None}, str(row["message"])
    )


def replay(ledger: Ledger, message_id: str, enqueue: Enqueue) -> Replayed:
    """Put the dead letter's event back in the inbox (pending) and enqueue it again; the
    dead letter is removed. Raises as :func:`find`."""
    letter = find(ledger, message_id)
    if letter.queue == "events_out":
        outbox_id = int(letter.message_id.removeprefix(EVENT_PREFIX))
        Outbox(ledger.db).replay(outbox_id, now_ms=now_ms())
        log.info("event out %s replayed", letter.message_id)
        return Replayed(letter.message_id, enqueued=True)  # the next delivery pass sends it
    kind = ledger.dead.release(letter.message_id, reopen=True)
    if kind is None:
        return Replayed(letter.message_id, enqueued=False)  # its event was applied already
    try:
        enqueue(kind, letter.message_id)
    except BROKER_ERRORS as exc:
        reason = " ".join(str(exc).split())
        log.warning(
            "replayed %s not enqueued (%s); the inbox sweep will",
            message_id,
            reason,
            extra={"inbox_id": letter.message_id},
        )
        return Replayed(letter.message_id, enqueued=False, not_enqueued=reason)
    log.info("dead letter %s replayed", letter.message_id, extra={"inbox_id": letter.message_id})
    return Replayed(letter.message_id, enqueued=True)


def purge(ledger: Ledger, message_id: str) -> DeadLetter:
    """Forget a dead letter; its event stays closed in the inbox. Raises as :func:`find`."""
    letter = find(ledger, message_id)
    if letter.queue == "events_out":
        Outbox(ledger.db).purge(int(letter.message_id.removeprefix(EVENT_PREFIX)))
        log.info("event out %s purged: never sent", letter.message_id)
        return letter
    ledger.dead.release(letter.message_id, reopen=False)
    log.info("dead letter %s purged", letter.message_id, extra={"inbox_id": letter.message_id})
    return letter
