"""Real Redis and PostgreSQL servers, started by the test session on free loopback ports.

Both servers live in their own temporary directory, listen on 127.0.0.1 only and can be
stopped, killed and started again on the same port and data directory, so persistence
survives a restart (chaos tests rely on that).

Nothing here depends on pytest: a failure to start raises :class:`ServerStartError`
carrying the tool output and the server log; the fixtures turn it into ``pytest.fail``.
"""

from __future__ import annotations

from tests.support.postgres_server import PostgresBinaries, PostgresServer, find_postgres_binaries
from tests.support.processes import LOOPBACK, ServerStartError, free_port, pid_alive
from tests.support.redis_server import RedisServer, find_redis_server

__all__ = [
    "LOOPBACK",
    "PostgresBinaries",
    "PostgresServer",
    "RedisServer",
    "ServerStartError",
    "find_postgres_binaries",
    "find_redis_server",
    "free_port",
    "pid_alive",
]
