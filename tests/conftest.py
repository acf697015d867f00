"""Session-wide fixtures: a real Redis, PostgreSQL and RabbitMQ server on loopback ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.support.rabbitmq_server import RabbitMQServer
from tests.support.servers import PostgresServer, RedisServer, ServerStartError

_Server = TypeVar("_Server", RedisServer, PostgresServer, RabbitMQServer)


def _session_server(
    request: pytest.FixtureRequest, make: Callable[[], _Server], name: str
) -> _Server:
    """``make()``'s server, started and closed at the end of the session; the test fails
    (never skips) when it cannot start."""
    try:
        server = make()
        request.addfinalizer(server.close)
        server.start()
    except ServerStartError as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:  # failed outside the except block, so the report shows the message once
        pytest.fail(f"could not start the test {name} server:\n{problem}", pytrace=False)
    return server


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> RedisServer:
    return _session_server(request, RedisServer, "Redis")


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    redis_server.start()  # no-op unless an earlier test left it stopped or killed
    redis_server.flushall()
    yield redis_server.url


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> PostgresServer:
    return _session_server(request, PostgresServer, "PostgreSQL")


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    postgres_server.start()  # no-op unless an earlier test left it stopped or killed
    url = postgres_server.create_database()
    yield url
    if postgres_server.running:
        postgres_server.drop_database(url)


@pytest.fixture(scope="session")
def rabbitmq_server(request: pytest.FixtureRequest) -> RabbitMQServer:
    """Debian's rabbitmq-server as a node of its own on free loopback ports (``make test``
    installs the package)."""
    return _session_server(request, RabbitMQServer, "RabbitMQ")


@pytest.fixture
def amqp_url(rabbitmq_server: RabbitMQServer) -> str:
    """A fresh, empty virtual host on the session's RabbitMQ."""
    rabbitmq_server.start()  # no-op unless an earlier test left it stopped
    return rabbitmq_server.fresh_url()
