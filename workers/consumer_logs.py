"""How a running worker reports a broker outage (Redis, or RabbitMQ with ``BROKER_URL=amqp://…``).

dramatiq's consumer threads, one per queue, each log a CRITICAL "connection error" line and
an INFO "Restarting consumer" line every 3 s for as long as Redis is unreachable: four
queues, forever. ``RedisOutageLog`` keeps one WARNING line per back-off instead (the waits
between lines double from 1 s up to 30 s), naming the server without its password; the
consumers themselves still retry every 3 s, so a returning Redis is used at once. A quiet
minute ends the outage: the next one is reported from the first wait again.

A ``logging.Filter`` on dramatiq's own consumer loggers, since dramatiq offers no setting
for this; everything else it logs is left as it is.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable

from dramatiq.worker import CONSUMER_RESTART_DELAY_SECS

from workers.broker_urls import AMQP_SCHEMES, parse_amqp_url
from workers.settings import parse_redis_url

__all__ = ["RedisOutageLog", "install"]

_CONNECTION_ERROR = "Consumer encountered a connection error: "
_RESTARTING = "Restarting consumer"
#: RabbitMQ's reason for closing a channel whose delivery outlived ``consumer_timeout``
#: (https://www.rabbitmq.com/docs/consumers#acknowledgement-timeout).
_DELIVERY_TIMED_OUT = "delivery acknowledgement on channel"


class RedisOutageLog(logging.Filter):
    """Rewrites the first connection error of each back-off, drops the rest (thread-safe:
    the consumers of every queue share one instance)."""

    def __init__(
        self,
        redis_url: str,
        *,
        first_wait_s: float = 1.0,
        max_wait_s: float = 30.0,
        quiet_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        amqp = redis_url.startswith(AMQP_SCHEMES)
        parsed = parse_amqp_url(redis_url) if amqp else parse_redis_url(redis_url)
        self._name = "RabbitMQ" if amqp else "Redis"
        self._where = parsed.location
        self._password = parsed.password
        self._first_wait_s = first_wait_s
        self._max_wait_s = max_wait_s
        self._quiet_s = quiet_s
        self._clock = clock
        self._lock = threading.Lock()
        self._wait_s = first_wait_s
        self._next_report = 0.0
        self._last_error = -math.inf

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(_RESTARTING):
            with self._lock:  # dramatiq's own restart line, during an outage: said already
                return self._clock() - self._last_error > 2 * CONSUMER_RESTART_DELAY_SECS
        if not message.startswith(_CONNECTION_ERROR):
            return True
        now = self._clock()
        with self._lock:
            if now - self._last_error > self._quiet_s:
                self._wait_s, self._next_report = self._first_wait_s, now
            self._last_error = now
            if now < self._next_report:
                return False
            wait = self._wait_s
            self._next_report = now + wait
            self._wait_s = min(wait * 2, self._max_wait_s)
        reason = " ".join(message.removeprefix(_CONNECTION_ERROR).split())
        if self._password:
            reason = reason.replace(self._password, "***")
        if _DELIVERY_TIMED_OUT in reason:  # the server is up: it gave up on a delivery
            record.msg = (
                "%s at %s closed a channel: a delivery stayed unacknowledged past its "
                "consumer_timeout (%s); it is delivered again and the inbox applies it once. "
                "Set REFUNDRY_RABBITMQ_CONSUMER_TIMEOUT_MS to the server's consumer_timeout "
                "(the start check then refuses delays and time limits that do not fit)"
            )
            record.args = (self._name, self._where, reason)
        else:
            record.msg = "cannot reach %s at %s (%s); consumers retry every %g s, next line in %g s"
            record.args = (self._name, self._where, reason, CONSUMER_RESTART_DELAY_SECS, wait)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def install(redis_url: str, queues: Iterable[str]) -> RedisOutageLog:
    """Put one ``RedisOutageLog`` on the consumer logger of each queue (and of its delay
    queue) of this worker process."""
    outage = RedisOutageLog(redis_url)
    for queue in queues:
        for name in (queue, f"{queue}.DQ"):
            logging.getLogger(f"dramatiq.worker.ConsumerThread({name})").addFilter(outage)
    return outage
