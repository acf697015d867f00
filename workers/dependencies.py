"""What a long-running process (``refundry worker``, ``refundry scheduler``) waits for before
it starts: the ledger's database and Redis.

A one-shot command refuses at once when either cannot be reached (``LedgerUnavailable``,
one line, exit 5). A service instead waits, as a supervisor expects of it: one line per
attempt saying what it could not reach (the URL without its password) and when it tries
again, the wait doubling from 1 s up to 30 s, then starts once the dependency answers.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import TypeVar

import pika.exceptions
import redis

from ledger import Ledger
from ledger.errors import LedgerUnavailable
from workers import runtime
from workers.broker import BROKER_ERRORS, broker_answers, redis_location
from workers.broker_urls import parse_amqp_url
from workers.settings import Settings, parse_redis_url

__all__ = [
    "lasting_broker_error",
    "wait_for",
    "wait_for_broker",
    "wait_for_ledger",
    "wait_for_redis",
]

T = TypeVar("T")
Report = Callable[[str], None]


def wait_for(
    attempt: Callable[[], T],
    *,
    name: str,
    unavailable: tuple[type[Exception], ...],
    describe: Callable[[Exception], str],
    report: Report,
    first_wait_s: float = 1.0,
    max_wait_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``attempt()``'s result, calling it again while it raises one of ``unavailable``: each
    failure is reported as one line (``describe(exc)`` and the next wait); a success after a
    failure is reported as ``<name> answers``."""
    wait = first_wait_s
    failed = False
    while True:
        try:
            result = attempt()
        except unavailable as exc:
            report(f"{describe(exc)}; next try in {wait:g} s")
            failed = True
        else:
            if failed:
                report(f"{name} answers")
            return result
        sleep(wait)
        wait = min(wait * 2, max_wait_s)


def wait_for_ledger(report: Report) -> Ledger:
    """The process's ledger (``runtime.ledger()``), once its database answers."""
    return wait_for(
        runtime.ledger,
        name=f"the ledger at {runtime.ledger_location()}",
        unavailable=(LedgerUnavailable,),
        describe=lambda exc: f"{type(exc).__name__}: {' '.join(str(exc).split())}",
        report=report,
    )


def wait_for_redis(url: str, report: Report) -> None:
    """Return once the Redis server at ``url`` answers a PING."""
    password = parse_redis_url(url).password

    def ping() -> None:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()

    def describe(exc: Exception) -> str:
        reason = " ".join(str(exc).split())
        if password:
            reason = reason.replace(password, "***")
        return f"cannot reach Redis at {redis_location(url)} ({reason})"

    wait_for(
        ping,
        name=f"Redis at {redis_location(url)}",
        unavailable=(redis.RedisError,),
        describe=describe,
        report=report,
    )


def wait_for_broker(settings: Settings, report: Report) -> None:
    """Return once the selected broker answers (``workers.broker.broker_answers``): Redis at
    ``REDIS_URL``/``BROKER_URL`` or RabbitMQ; nothing to wait for with the embedded Redis
    (started by the process itself). Lines name the broker without its password."""
    if settings.amqp_url is None:
        if settings.redis_url:
            wait_for_redis(settings.redis_url, report)
        return
    parsed = parse_amqp_url(settings.amqp_url)
    where = f"RabbitMQ at {parsed.location}"

    def describe(exc: Exception) -> str:
        reason = " ".join(f"{type(exc).__name__} {exc}".split())
        if parsed.password:
            reason = reason.replace(parsed.password, "***")
        if lasting_broker_error(exc):
            reason += "; waiting will not fix this: check BROKER_URL and the server"
        return f"cannot reach {where} ({reason})"

    wait_for(
        lambda: broker_answers(settings),
        name=where,
        unavailable=BROKER_ERRORS,
        describe=describe,
        report=report,
    )


#: AMQP reply codes of a server that answered and refused: 403 ACCESS_REFUSED (user,
#: password), 530 NOT_ALLOWED (no such virtual host, or no access to it).
_REFUSED_REPLY_CODES = (403, 530)


def lasting_broker_error(exc: BaseException) -> bool:
    """True when RabbitMQ answered and refused (credentials, virtual host) or the TLS
    handshake failed (``amqps://`` to a listener without TLS, or the reverse): the wait keeps
    trying, since the server's setup may change, but the line says it is not an outage."""
    lasting = (
        ssl.SSLError,
        pika.exceptions.AuthenticationError,
        pika.exceptions.ProbableAuthenticationError,
        pika.exceptions.ProbableAccessDeniedError,
    )
    if isinstance(exc, lasting):
        return True
    return (
        isinstance(exc, pika.exceptions.ConnectionClosedByBroker)
        and exc.reply_code in _REFUSED_REPLY_CODES
    )
