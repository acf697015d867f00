"""What a test asks of the broker, whichever one ``refundry_env`` selected: Redis
(``REDIS_URL``) or RabbitMQ (``BROKER_URL=amqp://…`` on the session's node)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pika
import redis

from tests.support.processes import _LIVE
from tests.support.rabbitmq_server import RabbitMQServer
from workers.broker import NAMESPACE, queue_idle

__all__ = ["dead_lettered", "idle"]


def _rabbitmq(url: str) -> tuple[RabbitMQServer, str]:
    parts = urlsplit(url)
    for server in _LIVE:
        if isinstance(server, RabbitMQServer) and server.port == parts.port:
            return server, unquote(parts.path[1:]) or "/"
    raise LookupError(f"no test RabbitMQ node on port {parts.port}")


def idle(env: dict[str, str], queue: str) -> bool:
    """True when ``queue`` holds no message: none ready, delayed or unacknowledged."""
    url = env.get("BROKER_URL", "")
    if url.startswith("amqp"):
        server, vhost = _rabbitmq(url)
        counts = server.messages(vhost)
        return counts.get(queue, 0) + counts.get(f"{queue}.DQ", 0) == 0
    r = redis.Redis.from_url(env["REDIS_URL"])
    try:
        return queue_idle(r, queue)
    finally:
        r.close()


def dead_lettered(env: dict[str, str], queue: str) -> int:
    """How many messages dramatiq's own dead-letter queue of ``queue`` holds."""
    url = env.get("BROKER_URL", "")
    if url.startswith("amqp"):
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            declared = connection.channel().queue_declare(f"{queue}.XQ", passive=True)
            return int(declared.method.message_count)
        finally:
            connection.close()
    r = redis.Redis.from_url(env["REDIS_URL"])
    try:
        return int(r.zcard(f"{NAMESPACE}:{queue}.XQ"))
    finally:
        r.close()
