"""Taking an event in: keep it in the inbox, then ring the broker's doorbell.

The one place where a reported event (from ``workers.client`` or the HTTP ingress) becomes
durable. The inbox row is committed before anything is enqueued; a redelivery of an event
already kept (same delivery identity, ``providers.deliveries``) is counted and enqueues
nothing. A failed enqueue is logged, not raised: the row is durable and the inbox sweep
sends it. The broker is reached only through the ``enqueue`` callable the caller passes,
so this module stays free of dramatiq.

:class:`GroupCommit` keeps the events of many concurrent callers in one transaction each
time (one commit, so one disk flush, for a whole batch): how the ingress takes thousands
of webhooks a second on the embedded SQLite ledger without weakening any guarantee, since
each caller still returns only once its own row is committed.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Final, Protocol

from ledger.errors import LedgerUnavailable
from ledger.inbox import NewEvent, Recorded
from providers.deliveries import delivery_key

__all__ = [
    "Enqueue",
    "GroupCommit",
    "Keeper",
    "LaterEnqueue",
    "announce",
    "new_event",
    "record_and_enqueue",
]

log = logging.getLogger(__name__)

Enqueue = Callable[[str, str], None]
"""``(kind, inbox_id) -> None``: send the inbox event to its actor."""


class Keeper(Protocol):
    """Where events are kept: ``ledger.inbox`` itself, or a :class:`GroupCommit` over it."""

    def record_many(self, events: Sequence[NewEvent]) -> list[Recorded]:
        """Keep the events (committed on return); what was kept for each."""
        ...


def new_event(
    *,
    kind: str,
    provider: str,
    payload: dict[str, Any],
    generation_id: str | None = None,
    operation: str | None = None,
    webhook_id: str | None = None,
) -> NewEvent:
    """The inbox event for ``payload`` (a JSON object), with a fresh id and its delivery
    identity; ``webhook_id`` is the provider's delivery id when the transport has one
    (Standard Webhooks ``webhook-id``, fal's request id)."""
    return NewEvent(
        id=uuid.uuid4().hex,
        kind=kind,
        provider=provider,
        payload=payload,
        generation_id=generation_id,
        operation=operation,
        delivery_key=delivery_key(
            provider,
            payload,
            operation=operation,
            webhook_id=webhook_id,
            generation_id=generation_id,
        ),
    )


def announce(enqueue: Enqueue, kind: str, recorded: Recorded) -> None:
    """Enqueue a kept event, unless it was a redelivery (its first delivery is applied, or
    being applied). A failed enqueue is logged: the inbox sweep sends the event."""
    if not recorded.new:
        log.info(
            "redelivery %d of %s recognised; not enqueued again", recorded.deliveries, recorded.id
        )
        return
    try:
        enqueue(kind, recorded.id)
    except Exception as exc:
        _enqueue_failed(recorded.id, exc)


def _enqueue_failed(inbox_id: str, exc: Exception) -> None:
    """One warning line, no traceback: the event is durable and the inbox sweep sends it, so
    a broker outage at webhook rates must not flood the log with tracebacks."""
    log.warning(
        "enqueue of %s failed (%s: %s); the inbox sweep will deliver it",
        inbox_id,
        type(exc).__name__,
        " ".join(str(exc).split())[:200],
    )


def record_and_enqueue(keeper: Keeper, enqueue: Enqueue, event: NewEvent) -> Recorded:
    """Keep ``event`` (:func:`new_event`) in the inbox, then :func:`announce` it. Returns
    what the inbox kept; a database error propagates (nothing was kept)."""
    [recorded] = keeper.record_many([event])
    announce(enqueue, event.kind, recorded)
    return recorded


_STOP: Final = None


class LaterEnqueue:
    """An :data:`Enqueue` that returns at once and sends from a thread of its own, in order.

    For a caller that must answer as soon as the event is durable (the ingress): the row is
    committed before it is handed over, so a message this process never sends (it crashed,
    the broker was down) is still sent by the inbox sweep.
    """

    def __init__(self, enqueue: Enqueue) -> None:
        self._enqueue = enqueue
        self._waiting: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="inbox-enqueue", daemon=True)
        self._thread.start()

    def __call__(self, kind: str, inbox_id: str) -> None:
        self._waiting.put((kind, inbox_id))

    def close(self) -> None:
        """Send what is waiting, then stop."""
        self._waiting.put(_STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while (item := self._waiting.get()) is not _STOP:
            kind, inbox_id = item
            try:
                self._enqueue(kind, inbox_id)
            except Exception as exc:
                _enqueue_failed(inbox_id, exc)


class GroupCommit:
    """A :class:`Keeper` that writes the events of concurrent callers in shared transactions.

    One writer thread takes whatever is waiting (up to ``max_batch`` events) and keeps it
    with one ``record_many``; each caller blocks until its batch is committed. ``on_kept``
    (non-blocking, e.g. :func:`announce` through :class:`LaterEnqueue`) is called for each
    kept event right after the commit, so an event whose caller gave up waiting (and
    answered "try again") is still enqueued. When a batch
    fails, its events are kept one by one, so that an event the database refuses fails
    alone; a database that is down fails them all (each caller sees the error).
    """

    def __init__(
        self,
        keeper: Keeper,
        *,
        max_batch: int = 500,
        on_kept: Callable[[NewEvent, Recorded], None] | None = None,
    ) -> None:
        self._keeper = keeper
        self._max_batch = max_batch
        self._on_kept = on_kept
        self._waiting: queue.SimpleQueue[tuple[NewEvent, Future[Recorded]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="inbox-group-commit", daemon=True)
        self._thread.start()

    def record_many(self, events: Sequence[NewEvent]) -> list[Recorded]:
        futures = [self.submit(event) for event in events]
        return [future.result() for future in futures]

    def submit(self, event: NewEvent) -> Future[Recorded]:
        """Hand ``event`` to the writer; the future is done once its batch is committed."""
        future: Future[Recorded] = Future()
        self._waiting.put((event, future))
        return future

    def close(self) -> None:
        """Keep what is waiting, then stop the writer."""
        self._waiting.put(_STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._waiting.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    more = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._waiting.put(_STOP)
                    break
                batch.append(more)
            # A caller that gave up (its deadline passed) cancelled its future: not kept.
            batch = [item for item in batch if item[1].set_running_or_notify_cancel()]
            if batch:
                self._keep(batch)

    def _keep(self, batch: list[tuple[NewEvent, Future[Recorded]]]) -> None:
        try:
            kept = self._keeper.record_many([event for event, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or _database_unavailable(exc):
                for _, future in batch:
                    future.set_exception(exc)
                return
            for one in batch:  # one refused event must not fail the others
                self._keep([one])
            return
        for (event, future), recorded in zip(batch, kept, strict=True):
            if self._on_kept is not None:  # even when its caller stopped waiting
                self._on_kept(event, recorded)
            future.set_result(recorded)


def _database_unavailable(exc: BaseException) -> bool:
    """``LedgerUnavailable``, or a DB-API ``OperationalError`` (PEP 249: disconnects,
    timeouts, a locked database; psycopg's pool timeout is one): trying the batch's events
    one by one would only wait that many times longer."""
    if isinstance(exc, LedgerUnavailable):
        return True
    return any(cls.__name__ == "OperationalError" for cls in type(exc).__mro__)
