"""Which broker the settings select: ``BROKER_URL`` (``redis://…`` or ``amqp://…``), else
``REDIS_URL`` (kept working as before), else the embedded Redis.

| ``BROKER_URL`` | broker |
| --- | --- |
| ``redis://``, ``rediss://``, ``unix://`` | dramatiq's ``RedisBroker`` (as ``REDIS_URL``) |
| ``amqp://``, ``amqps://`` | dramatiq's ``RabbitmqBroker``, publisher confirms on |

Both are parsed before any driver sees them (``ledger.server_urls``): a URL that cannot be
used is refused naming the variable, never repeating it, and what is printed (``status``,
an outage line) carries no password. Setting both variables to different servers (an
``amqp://`` ``BROKER_URL`` beside a ``REDIS_URL`` included) is a mistake (which one would the
web process enqueue on?) and is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

import pika

from ledger.errors import ConfigurationError
from ledger.server_urls import ServerURL, parse_server_url
from workers.setting_values import REDIS_SCHEMES, parse_redis_url

__all__ = [
    "AMQP_SCHEMES",
    "PIKA_URL_PARAMETERS",
    "broker_location",
    "parse_amqp_url",
    "select_broker",
]

AMQP_SCHEMES = ("amqp", "amqps")


def parse_amqp_url(url: str, variable: str = "BROKER_URL") -> ServerURL:
    """An ``amqp://user:password@host:port/vhost`` URL (pika's form: the vhost
    percent-encoded, ``%2F`` for ``/``); one host. ``ConfigurationError`` naming
    ``variable`` for anything else."""
    parsed = parse_server_url(url, variable=variable, schemes=AMQP_SCHEMES)
    if len(parsed.hosts) != 1 or not parsed.hosts[0][0]:
        raise ConfigurationError(
            "one host (amqp://user:password@host:5672/vhost)", variable=variable
        )
    if parsed.path.count("/") > 1:  # pika would silently use the first segment only
        raise ConfigurationError(
            "the virtual host is one path segment: write a '/' in it as %2F", variable=variable
        )
    _check_query(parsed, variable)
    return parsed


#: The query parameters pika's ``URLParameters`` reads (one ``_set_url_<name>`` method each:
#: https://pika.readthedocs.io/en/stable/modules/parameters.html#urlparameters).
PIKA_URL_PARAMETERS = tuple(
    sorted(
        name.removeprefix("_set_url_")
        for name in dir(pika.URLParameters)
        if name.startswith("_set_url_")
    )
)


def _check_query(parsed: ServerURL, variable: str) -> None:
    """Each query parameter known to pika, given once, with a value pika accepts; checked
    by pika's own parser on a URL without user or password, so no error can show one."""
    seen: set[str] = set()
    for name, value in parse_qsl(parsed.query, keep_blank_values=True):
        if name not in PIKA_URL_PARAMETERS:
            raise ConfigurationError(
                "unknown query parameter",
                variable=variable,
                parameter=name if re.fullmatch(r"\w{1,40}", name) else "?",
                supported=", ".join(PIKA_URL_PARAMETERS),
            )
        if name in seen or not value:
            raise ConfigurationError(
                "a query parameter is given once, with a value", variable=variable, parameter=name
            )
        seen.add(name)
        try:
            pika.URLParameters(f"{parsed.scheme}://localhost/?{urlencode({name: value})}")
        # pika's parsers raise whatever float(), int(), ast.literal_eval or ssl raise
        except (ValueError, TypeError, SyntaxError, AttributeError, OSError, RecursionError):
            raise ConfigurationError(
                "a query parameter's value cannot be used", variable=variable, parameter=name
            ) from None


def select_broker(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """``(redis_url, amqp_url)``: at most one is set; both None means the embedded Redis.
    Raises ``ConfigurationError`` naming the variable at fault."""
    broker_url = _given(env, "BROKER_URL")
    redis_url = _given(env, "REDIS_URL")
    if redis_url is not None:
        parse_redis_url(redis_url)
    if broker_url is None:
        return redis_url, None
    scheme = broker_url.partition("://")[0].lower()
    if scheme in AMQP_SCHEMES:
        parse_amqp_url(broker_url)
    else:
        parse_server_url(broker_url, variable="BROKER_URL", schemes=REDIS_SCHEMES + AMQP_SCHEMES)
        parse_redis_url(broker_url, variable="BROKER_URL")
    if redis_url is not None and redis_url != broker_url:
        # Neither wins: a worker restarted on a shared env file would silently leave the
        # messages it held on the other broker.
        raise ConfigurationError(
            "BROKER_URL and REDIS_URL name two servers: set one", variable="BROKER_URL"
        )
    return (None, broker_url) if scheme in AMQP_SCHEMES else (broker_url, None)


def _given(env: Mapping[str, str], variable: str) -> str | None:
    """The variable's value, None when unset; a blank value is refused: taken for "unset",
    it would start an embedded Redis of its own on each host."""
    value = env.get(variable)
    if value is not None and not value.strip():
        raise ConfigurationError(
            f"{variable} is blank: set a URL or leave the variable unset", variable=variable
        )
    return value


def broker_location(redis_url: str | None, amqp_url: str | None) -> str | None:
    """The selected broker's URL without password or query, safe to print; None for the
    embedded Redis."""
    if amqp_url is not None:
        return parse_amqp_url(amqp_url).location
    if redis_url is not None:
        return parse_redis_url(redis_url).location
    return None
