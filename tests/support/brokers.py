"""What a test asks of the broker, whichever one ``refundry_env`` selected: Redis
(``REDIS_URL``) or RabbitMQ (``BROKER_URL=amqp://…``, a virtual host on the session's node)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pika
import redis

from tests.support.processes import _LIVE
from tests.support.rabbitmq_server import RabbitMQServer
from workers.broker import NAMESPACE, queue_idle

__all__ = ["dead_lettered", "held", "idle", "lose_every_message"]


def _rabbitmq(env: dict[str, str]) -> tuple[RabbitMQServer, str] | None:
    """The session's RabbitMQ node and the virtual host ``env`` names; None on Redis."""
    url = env.get("BROKER_URL", "")
    if not url.startswith("amqp"):
        return None
    parts = urlsplit(url)
    for server in _LIVE:
        if isinstance(server, RabbitMQServer) and server.port == parts.port:
            return server, unquote(parts.path[1:]) or "/"
    raise LookupError(f"no test RabbitMQ node on port {parts.port}")


def _redis(env: dict[str, str]) -> redis.Redis:
    return redis.Redis.from_url(env["REDIS_URL"])


def idle(env: dict[str, str], queue: str) -> bool:
    """True when ``queue`` holds no message: none ready, delayed or unacknowledged."""
    rabbit = _rabbitmq(env)
    if rabbit is not None:
        counts = rabbit[0].messages(rabbit[1])
        return counts.get(queue, 0) + counts.get(f"{queue}.DQ", 0) == 0
    with _redis(env) as r:
        return queue_idle(r, queue)


def held(env: dict[str, str]) -> int:
    """Messages fetched by workers and not acknowledged yet, on every queue."""
    rabbit = _rabbitmq(env)
    if rabbit is not None:
        return sum(rabbit[0].messages(rabbit[1], "messages_unacknowledged").values())
    with _redis(env) as r:
        return sum(int(r.scard(k)) for k in r.scan_iter(f"{NAMESPACE}:__acks__.*"))


def lose_every_message(env: dict[str, str], queues: tuple[str, ...]) -> None:
    """Drop every message of ``queues`` (and their delay queues), as a broker that lost
    them would."""
    if _rabbitmq(env) is None:
        with _redis(env) as r:
            r.flushall()
        return
    connection = pika.BlockingConnection(pika.URLParameters(env["BROKER_URL"]))
    try:
        channel = connection.channel()
        for queue in queues:
            for name in (queue, f"{queue}.DQ"):
                channel.queue_purge(name)
    finally:
        connection.close()


def dead_lettered(env: dict[str, str], queue: str) -> int:
    """How many messages dramatiq's own dead-letter queue of ``queue`` holds."""
    if _rabbitmq(env) is not None:
        connection = pika.BlockingConnection(pika.URLParameters(env["BROKER_URL"]))
        try:
            declared = connection.channel().queue_declare(f"{queue}.XQ", passive=True)
            return int(declared.method.message_count)
        finally:
            connection.close()
    with _redis(env) as r:
        return int(r.zcard(f"{NAMESPACE}:{queue}.XQ"))
