"""The webhook ingress, transport-agnostic: a delivery (route, raw body, headers) is verified
by its route (``handlers.ingress_routes``), kept in the inbox and enqueued, or refused.

Nothing unverified is kept, and nothing verified either unless it is within the payload
rule every door into Refundry applies (the ``payload_rule`` the transport passes:
``workers.validation.payload``) and the job id a worker will put into a status URL has the
shape its provider documents (``providers.job_ids``); else ``BodyMalformed``. A delivery is
answered as accepted only once its inbox row is committed: a database error propagates to
the transport, which answers "try again".
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from handlers.ingress_routes import INLINE_ROUTES, Delivery, RouteVerifier
from handlers.intake import Enqueue, GroupCommit, LaterEnqueue, announce, new_event
from handlers.thin_events import THIN_EVENTS
from handlers.webhook_verification import (
    BodyMalformed,
    BodyTooLarge,
    DeliveryRefused,
    HeadersTooLarge,
    RouteDisabled,
    SignatureRefused,
    SignatureUnreadable,
)
from ledger import Ledger
from ledger.errors import InvalidJobId, InvalidPayload
from ledger.inbox import NewEvent, Recorded
from providers.job_ids import check_job_id

__all__ = [
    "Accepted",
    "Ingress",
    "PayloadRule",
    "refusal",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Accepted:
    """What became of an accepted delivery."""

    inbox_id: str | None
    """The inbox row that holds the event; ``None`` for an event type Refundry has no use
    for (verified, acknowledged, not kept)."""
    redelivery: bool = False


PayloadRule = Callable[[object], dict[str, Any]]
"""``payload -> the payload as kept``, or raises ``InvalidPayload``: the rule every door
applies (``workers.validation.payload``)."""


class Ingress:
    """Verify, keep, enqueue. Thread-safe; one per process.

    Deliveries that arrive together share their inbox transaction
    (``handlers.intake.GroupCommit``) and are enqueued from a thread of their own, unless
    ``group_commit`` is off. :meth:`deliver` does it all, blocking; a transport with an
    event loop can instead call :meth:`verify`, wait on :meth:`submit`'s future and finish
    with :meth:`accepted`.
    """

    def __init__(
        self,
        ledger: Ledger,
        enqueue: Enqueue,
        routes: Mapping[str, RouteVerifier],
        *,
        payload_rule: PayloadRule,
        group_commit: bool = True,
        on_count: Callable[[str, str], None] = lambda route, outcome: None,
    ) -> None:
        self.ledger = ledger
        self.routes = dict(routes)
        self._payload_rule = payload_rule
        self._enqueue: Enqueue = LaterEnqueue(enqueue) if group_commit else enqueue
        self._group = GroupCommit(ledger.inbox, on_kept=self._announce) if group_commit else None
        self._on_count = on_count

    def enabled(self, route: str) -> bool:
        return route in self.routes

    def close(self) -> None:
        """Keep what is waiting for the group commit, send what is waiting for the broker."""
        if self._group is not None:
            self._group.close()
        if isinstance(self._enqueue, LaterEnqueue):
            self._enqueue.close()

    def inline(self, route: str) -> bool:
        """True when the route's verification does no I/O (cheap enough for an event loop)."""
        return route in INLINE_ROUTES

    def deliver(self, route: str, body: bytes, headers: Mapping[str, str]) -> Accepted:
        """Verify the delivery and keep it (``headers`` with lower-case names), blocking until
        its row is committed. Raises ``DeliveryRefused`` (nothing kept); any other error
        means nothing was kept either and the sender should try again."""
        event = self.verify(route, body, headers)
        if event is None:
            return Accepted(None)
        return self.accepted(route, event, self.submit(event).result())

    def verify(self, route: str, body: bytes, headers: Mapping[str, str]) -> NewEvent | None:
        """The inbox event of a verified delivery; ``None`` for one of no use (acknowledged,
        not kept). Raises ``DeliveryRefused``."""
        verify = self.routes.get(route)
        try:
            if verify is None:
                raise RouteDisabled(route=route)
            delivery = verify(body, headers)
            if delivery is not None:
                delivery = self._within_the_rule(delivery)
        except DeliveryRefused as refused:
            self.count(route, refusal(refused))
            raise
        if delivery is None:
            self.count(route, "ignored")
            return None
        return new_event(
            kind=delivery.kind,
            provider=delivery.provider,
            payload=delivery.payload,
            operation=delivery.operation,
            webhook_id=delivery.webhook_id,
        )

    def _within_the_rule(self, delivery: Delivery) -> Delivery:
        """``delivery`` with its payload as the payload rule keeps it, once the job id a
        thin event names (fetched by a worker later) has its documented shape. Raises
        ``BodyMalformed``: verified, but nothing any door would keep."""
        try:
            payload = self._payload_rule(delivery.payload)
            job_id_of = THIN_EVENTS.get(delivery.provider)
            job_id = job_id_of(payload) if job_id_of is not None else None
            if job_id is not None:
                check_job_id(delivery.provider, job_id)
        except (InvalidPayload, InvalidJobId) as exc:
            raise BodyMalformed("outside the payload rule", error=type(exc).__name__) from None
        return dataclasses.replace(delivery, payload=payload)

    def submit(self, event: NewEvent) -> Future[Recorded]:
        """Keep ``event``: the future is done once its row is committed and the event
        enqueued (or has the error)."""
        if self._group is not None:
            return self._group.submit(event)
        future: Future[Recorded] = Future()
        try:
            [recorded] = self.ledger.inbox.record_many([event])
        except Exception as exc:
            future.set_exception(exc)
            return future
        self._announce(event, recorded)
        future.set_result(recorded)
        return future

    def _announce(self, event: NewEvent, recorded: Recorded) -> None:
        announce(self._enqueue, event.kind, recorded)

    def accepted(self, route: str, event: NewEvent, recorded: Recorded) -> Accepted:
        """Count a kept event (it was enqueued, unless a redelivery, when it was kept)."""
        self.count(route, "accepted" if recorded.new else "redelivery")
        return Accepted(recorded.id, redelivery=not recorded.new)

    def count(self, route: str, outcome: str) -> None:
        """Count one delivery of ``route`` by its outcome (``on_count(route, outcome)``):
        ``accepted``, ``redelivery``, ``ignored``, ``unavailable``, ``disconnected`` (the
        sender hung up mid-body), and each refusal (:func:`refusal`)."""
        self._on_count(route, outcome)


def refusal(refused: DeliveryRefused) -> str:
    """A refusal's label in logs and counts: ``disabled``, ``too_large``,
    ``headers_too_large``, ``malformed``, or
    why the signature was refused (``missing``, ``forged``, ``stale``, ``future``,
    ``unreadable``, ``foreign_account``)."""
    if isinstance(refused, SignatureRefused | SignatureUnreadable):
        return refused.why
    if isinstance(refused, RouteDisabled):
        return "disabled"
    if isinstance(refused, BodyTooLarge):
        return "too_large"
    if isinstance(refused, HeadersTooLarge):
        return "headers_too_large"
    return "malformed"
