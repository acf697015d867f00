"""dramatiq's Redis broker, configured for Refundry.

``REDIS_URL`` set → that server. Unset → the embedded ``redis-server`` of this checkout
(``workers.embedded_redis``), started on first use and stopped when the process that
started it exits. ``refundry worker`` waits for an unreachable ``REDIS_URL``
(``workers.dependencies``) instead of starting workers that cannot consume.
"""

from __future__ import annotations

import atexit

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    CurrentMessage,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from workers.budgets import Budgets
from workers.embedded_redis import EmbeddedRedis
from workers.lanes import LanesMiddleware
from workers.logs import MessageLogIds
from workers.settings import Settings, parse_redis_url

__all__ = [
    "NAMESPACE",
    "build_broker",
    "queue_idle",
    "redis_location",
    "resolve_redis_url",
]

NAMESPACE = "refundry"

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


def build_broker(settings: Settings) -> RedisBroker:
    """A RedisBroker whose retry budget fits inside the refund SLA.

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
    ]
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
