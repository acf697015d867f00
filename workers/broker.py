"""dramatiq's broker, configured for Refundry: Redis, or RabbitMQ (``workers.broker_urls``).

``BROKER_URL=amqp://…`` → dramatiq's ``RabbitmqBroker`` with publisher confirms on (its
default is off: an enqueue would return before RabbitMQ took the message), so an enqueue
that returns is a message RabbitMQ has; its dead-lettered messages go to the ``.XQ`` queue
of their queue (kept 7 days), the reason into the ledger as with Redis
(``workers.dead_letters``).

``REDIS_URL`` (or ``BROKER_URL=redis://…``) set → that server. Unset → the embedded
``redis-server`` of this checkout
(``workers.embedded_redis``), started on first use and stopped when the process that
started it exits. ``refundry worker`` waits for an unreachable ``REDIS_URL``
(``workers.dependencies``) instead of starting workers that cannot consume.
"""

from __future__ import annotations

import atexit
import logging
import os
import ssl
from collections.abc import Mapping
from typing import Any

import dramatiq
import pika
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import DramatiqError
from dramatiq.middleware import (
    AgeLimit,
    CurrentMessage,
    Middleware,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from ledger.errors import LedgerUnavailable
from workers import runtime
from workers.broker_urls import select_broker
from workers.budgets import Budgets
from workers.embedded_redis import EmbeddedRedis
from workers.lanes import LanesMiddleware
from workers.logs import MessageLogIds
from workers.settings import Settings, parse_redis_url

__all__ = [
    "BROKER_ERRORS",
    "NAMESPACE",
    "bare_broker",
    "broker_answers",
    "build_broker",
    "queue_drained",
    "queue_idle",
    "rabbitmq_parameters",
    "redis_location",
    "resolve_redis_url",
]

log = logging.getLogger(__name__)

NAMESPACE = "refundry"
"""Redis keys' prefix. RabbitMQ has none: give Refundry its own virtual host in the URL."""

BROKER_ERRORS: tuple[type[Exception], ...] = (
    redis.RedisError,
    pika.exceptions.AMQPError,
    DramatiqError,  # RabbitmqBroker's ConnectionClosed once its enqueue attempts are spent
    ssl.SSLError,  # amqps:// against a listener without TLS: pika lets the handshake's through
)
"""What an enqueue or a probe raises when the broker, either one, cannot be reached."""

_embedded: EmbeddedRedis | None = None


def resolve_redis_url(settings: Settings) -> str:
    """``REDIS_URL``, else the embedded server's URL (started if needed)."""
    global _embedded
    if settings.redis_url:
        return settings.redis_url
    if _embedded is None:
        _embedded = EmbeddedRedis(settings.home)
        _embedded.ensure()
        atexit.register(_embedded.stop)
    return _embedded.url


def redis_location(url: str) -> str:
    """``url`` rebuilt from its parts without the password or the query (which may carry
    one), so that it is safe to print: ``redis://user@host:port/db``. Raises
    ``ConfigurationError`` for a URL that cannot be used (``workers.settings``)."""
    return parse_redis_url(url).location


class LedgerAtBoot(Middleware):
    """Each worker process opens its ledger when it boots, not on its first message: its
    PostgreSQL pool is then counted by every process that starts after it
    (``workers.pg_pools``). A database still unreachable is opened on first use instead."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        try:
            runtime.ledger()
        except LedgerUnavailable as exc:
            log.warning("ledger not opened at boot (%s); opened on first use", exc)


def rabbitmq_parameters(url: str, *, timeout_s: float | None = None) -> pika.URLParameters:
    """pika's parameters for ``url``; with ``timeout_s``, one connection attempt bounded by
    it (a probe), else pika's defaults (dramatiq retries its own enqueues)."""
    parameters = pika.URLParameters(url)
    if timeout_s is not None:
        parameters.connection_attempts = 1
        parameters.socket_timeout = timeout_s
        parameters.stack_timeout = timeout_s
        parameters.blocked_connection_timeout = timeout_s
    return parameters


def broker_answers(settings: Settings, timeout_s: float = 2.0) -> None:
    """Return when the selected broker answers within ``timeout_s`` (Redis: a PING;
    RabbitMQ: a connection opened and closed); raise one of :data:`BROKER_ERRORS` else."""
    if settings.amqp_url is not None:
        pika.BlockingConnection(rabbitmq_parameters(settings.amqp_url, timeout_s=timeout_s)).close()
        return
    client = redis.Redis.from_url(
        resolve_redis_url(settings), socket_connect_timeout=timeout_s, socket_timeout=timeout_s
    )
    try:
        client.ping()
    finally:
        client.close()


def build_broker(settings: Settings) -> dramatiq.Broker:
    """A RedisBroker, or a RabbitmqBroker with publisher confirms (``BROKER_URL=amqp://…``),
    whose retry budget fits inside the refund SLA. On RabbitMQ the longest delay must stay
    within its consumer timeout (``Budgets.check_rabbitmq``: ``ConfigurationError`` else).

    Callbacks and Pipelines are left out: their follow-up enqueue runs in an after-hook that
    swallows failures (dramatiq PR #545), and nothing of ours depends on them.
    """
    middleware = [
        MessageLogIds(),  # first: its after-hook runs last, so every line of a message has its ids
        AgeLimit(),
        TimeLimit(time_limit=Budgets(settings).result_time_limit_ms),  # each actor sets its own
        ShutdownNotifications(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.min_backoff_ms,
            max_backoff=settings.max_backoff_ms,
        ),
        CurrentMessage(),
        LanesMiddleware(),  # no provider holds more than half of a process's threads
        LedgerAtBoot(),
    ]
    broker: dramatiq.Broker
    if settings.amqp_url is not None:
        Budgets(settings).check_rabbitmq()
        broker = RabbitmqBroker(url=settings.amqp_url, confirm_delivery=True, middleware=middleware)
    else:
        broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=resolve_redis_url(settings), namespace=NAMESPACE, middleware=middleware
        )
    dramatiq.set_broker(broker)
    return broker


def queue_idle(client: redis.Redis, queue: str) -> bool:
    """True when ``queue`` holds no message: none waiting, delayed, or fetched unacked."""
    depth = int(client.llen(f"{NAMESPACE}:{queue}")) + int(client.llen(f"{NAMESPACE}:{queue}.DQ"))
    unacked = 0
    for key in client.scan_iter(f"{NAMESPACE}:__acks__.*"):
        name = key.decode() if isinstance(key, bytes) else str(key)
        if name.endswith((f".{queue}", f".{queue}.DQ")):
            unacked += int(client.scard(key))
    return depth + unacked == 0


def bare_broker(env: Mapping[str, str] | None = None) -> dramatiq.Broker:
    """dramatiq's broker with its default middleware, on the broker ``env`` (the process's
    environment) selects: ``BROKER_URL=amqp://…`` → RabbitMQ (publisher confirms, as
    Refundry's own), else Redis at ``REDIS_URL``. For the bench's yardsticks."""
    env = os.environ if env is None else env
    redis_url, amqp_url = select_broker(env)
    if amqp_url is not None:
        return RabbitmqBroker(url=amqp_url, confirm_delivery=True)
    return RedisBroker(url=redis_url, namespace=NAMESPACE)  # type: ignore[no-untyped-call]


def queue_drained(broker: dramatiq.Broker, queue: str) -> bool:
    """True when ``queue`` holds no message. Redis: :func:`queue_idle` (none waiting,
    delayed or fetched unacked). RabbitMQ: none ready and none delayed; AMQP does not count
    the deliveries consumers hold unacknowledged (at most their prefetch: dramatiq's is twice
    the threads), so the queue may read drained while they are still worked on."""
    if isinstance(broker, RabbitmqBroker):
        ready, delayed, _dead = broker.get_queue_message_counts(queue)
        return int(ready) + int(delayed) == 0
    if not isinstance(broker, RedisBroker):
        raise TypeError(f"not a Redis or RabbitMQ broker: {type(broker).__name__}")
    return queue_idle(broker.client, queue)
