"""The dramatiq actors: each decodes its message and calls one handler, nothing more.

A message carries only the id of its inbox row: the database holds the event, so a message
that is lost, duplicated or replayed changes nothing but latency. A call to a provider's
API runs in that provider's lane (``workers.lanes``): at most half of a process's threads,
so a provider whose API hangs delays no one else's refunds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import dramatiq

from handlers.generation import apply_kept_result
from handlers.payments import apply_payment_event
from handlers.result_batches import settle_result_batch
from handlers.subscriptions import apply_subscription_event
from ledger import InboxItem, Ledger
from ledger.errors import RefundryError
from providers.stripe import parse_event
from providers.stripe_subscriptions import parse_subscription_event
from workers import consumer_logs, runtime
from workers.broker import build_broker, resolve_redis_url
from workers.dead_letters import dead_letter_on_final_failure
from workers.lanes import LANES, LaneFull, wait_for_lane
from workers.logs import bind_log_ids, configure_logging, install_redaction

__all__ = [
    "ACTORS_BY_KIND",
    "PAYMENTS_QUEUE",
    "RESULTS_QUEUE",
    "broker",
    "enqueue_event",
    "process_payment",
    "process_result",
    "should_retry",
]

log = logging.getLogger(__name__)

RESULTS_QUEUE = "results"
PAYMENTS_QUEUE = "payments"

install_redaction()
_settings = runtime.settings()
if _settings.log_format == "json":  # else dramatiq's own format, as its CLI set it up
    configure_logging("json")
_budgets = runtime.budgets()
broker = build_broker(_settings)


def should_retry(retries_so_far: int, exc: BaseException) -> bool:
    """dramatiq's ``retry_when``: permanent errors go to the dead-letter queue at once,
    others are retried within the budget that fits the refund SLA."""
    if isinstance(exc, RefundryError) and exc.permanent:
        return False
    return retries_so_far < _settings.max_retries


@dramatiq.actor(
    queue_name=RESULTS_QUEUE,
    retry_when=should_retry,  # retries and backoff: the broker's Retries middleware
    time_limit=_budgets.result_time_limit_ms,
)
def process_result(inbox_id: str) -> None:
    """A provider result: classify it, refund the generation if its outcome says so."""

    def run() -> None:
        if inbox_id in _SETTLED_HERE:  # committed processed by a batch of this process
            _SETTLED_HERE.discard(inbox_id)
            return
        ledger = runtime.ledger()
        item = _pending(ledger, inbox_id)
        if item is None:
            return
        if _settled_in_batch(ledger, inbox_id):
            return
        try:
            applied = apply_kept_result(
                ledger, item, policy=runtime.policy(), fetch_job=_fetch_job_in_lane
            )
        except LaneFull:  # its provider's API calls hold their share of threads: later
            wait_for_lane(broker)
            return
        log.info(
            "generation %s: %s → %s",
            applied.generation_id,
            applied.classification.outcome.value,
            applied.settlement.value,
            extra={"generation_id": applied.generation_id},  # found by its job id, perhaps
        )

    dead_letter_on_final_failure(run, inbox_id=inbox_id, should_retry=should_retry)


@dramatiq.actor(
    queue_name=PAYMENTS_QUEUE,
    retry_when=should_retry,
    time_limit=_budgets.payment_time_limit_ms,
)
def process_payment(inbox_id: str) -> None:
    """A payment event: grant the pack once, refund or claw back as it says; a subscription
    event refunds a charge made after the subscription's cancellation."""

    def run() -> None:
        ledger = runtime.ledger()
        item = _pending(ledger, inbox_id)
        if item is None:
            return
        # Every payment event is confirmed at Stripe (handlers.confirmation): the whole event
        # runs in Stripe's lane, so a hanging Stripe holds its share of threads, never all.
        with LANES.hold("api:stripe") as held:
            if not held:
                wait_for_lane(broker)
                return
            did = _apply_payment(ledger, item.payload, inbox_id)
        log.info("payment %s: %s", inbox_id, did)

    dead_letter_on_final_failure(run, inbox_id=inbox_id, should_retry=should_retry)


def _apply_payment(ledger: Ledger, payload: Mapping[str, Any], inbox_id: str) -> str:
    """Apply one payment or subscription event; each handler marks the inbox row processed
    in the same transaction as its effect. Returns what was done, for the log."""
    subscription_event = parse_subscription_event(payload)
    if subscription_event is not None:
        return apply_subscription_event(
            ledger, subscription_event, gateway=runtime.payment_gateway(), inbox_id=inbox_id
        )
    return apply_payment_event(
        ledger,
        parse_event(payload),
        catalog=runtime.catalog(),
        gateway=runtime.payment_gateway(),
        policy=runtime.payment_policy(),
        inbox_id=inbox_id,
    )


#: Inbox rows this process's batches committed as processed lately: their own messages, when
#: they arrive here, ack without reading the row (set operations are atomic under the GIL).
_SETTLED_HERE: set[str] = set()
_SETTLED_HERE_MAX = 100_000


def _settled_in_batch(ledger: Ledger, inbox_id: str) -> bool:
    """The message is a doorbell: settle its row with other pending results in one
    transaction (``handlers.result_batches``); False when its row was left out (it is then
    applied alone, as without batches) or batches are off (``REFUNDRY_RESULT_BATCH=1``)."""
    if _settings.result_batch <= 1:
        return False
    batch = settle_result_batch(
        ledger, first_id=inbox_id, limit=_settings.result_batch, policy=runtime.policy()
    )
    if len(_SETTLED_HERE) > _SETTLED_HERE_MAX:  # messages of rows long settled: read instead
        _SETTLED_HERE.clear()
    _SETTLED_HERE.update(batch.settled)
    return inbox_id in batch.settled


def _fetch_job_in_lane(provider: str, job_id: str) -> Mapping[str, Any]:
    """``runtime.fetch_job`` within its provider's share of this process's threads
    (``workers.lanes``); ``LaneFull`` when that share is taken."""
    with LANES.hold(f"api:{provider}") as held:
        if not held:
            raise LaneFull(provider)
        return runtime.fetch_job(provider, job_id)


def _pending(ledger: Ledger, inbox_id: str) -> InboxItem | None:
    """The inbox event a message names; None when it was already applied (a redelivery)."""
    item = ledger.inbox.get(inbox_id)
    if item is None:
        raise RefundryError("no inbox row for this message", inbox_id=inbox_id)
    bind_log_ids(generation_id=item.generation_id, provider=item.provider)
    if item.state != "pending":
        log.info("inbox %s already %s", inbox_id, item.state)
        return None
    return item


#: The actor that applies each kind of inbox event.
ACTORS_BY_KIND: dict[str, dramatiq.Actor] = {  # type: ignore[type-arg]
    "result": process_result,
    "payment": process_payment,
}


def enqueue_event(kind: str, inbox_id: str) -> None:
    """Send an inbox event to its actor; the message id is the inbox id, so every delivery
    of one event (first send, retries, sweeps) carries the same id."""
    actor = ACTORS_BY_KIND[kind]
    _follow_settings()
    broker.enqueue(actor.message(inbox_id).copy(message_id=inbox_id))


_built_for = (_settings.redis_url, _settings.amqp_url)


def _follow_settings() -> None:
    """Rebuild the broker, and move the actors onto it, when this process's settings now
    name another broker than the one built at import (tests switch between Redis and
    RabbitMQ); a deployed process's settings never change, so it never does."""
    global broker, _built_for
    s = runtime.settings()
    if (s.redis_url, s.amqp_url) == _built_for:
        return
    old, broker, _built_for = broker, build_broker(s), (s.redis_url, s.amqp_url)
    for actor in ACTORS_BY_KIND.values():
        actor.broker = broker
        broker.declare_actor(actor)
    old.close()


consumer_logs.install(
    _settings.amqp_url or resolve_redis_url(_settings), (RESULTS_QUEUE, PAYMENTS_QUEUE)
)
