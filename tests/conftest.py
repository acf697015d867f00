"""Session-wide fixtures: a real Redis and a real PostgreSQL server on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import PostgresServer, RedisServer, ServerStartError


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    try:
        server = RedisServer()
        request.addfinalizer(server.close)
        server.start()
    except ServerStartError as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:  # failed outside the except block, so the report shows the message once
        pytest.fail(f"could not start the test Redis server:\n{problem}", pytrace=False)
    yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    redis_server.start()  # no-op unless an earlier test left it stopped or killed
    redis_server.flushall()
    yield redis_server.url


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
        request.addfinalizer(server.close)
        server.start()
    except ServerStartError as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:  # failed outside the except block, so the report shows the message once
        pytest.fail(f"could not start the test PostgreSQL server:\n{problem}", pytrace=False)
    yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    postgres_server.start()  # no-op unless an earlier test left it stopped or killed
    url = postgres_server.create_database()
    yield url
    if postgres_server.running:
        postgres_server.drop_database(url)
