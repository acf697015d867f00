"""The session's real Redis and PostgreSQL servers work, and survive restarts."""

from __future__ import annotations

import psycopg
import pytest
import redis

from tests.support.servers import PostgresServer, RedisServer


def test_redis_set_get(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        assert client.set("refundry:probe", "42")
        assert client.get("refundry:probe") == b"42"


def test_redis_url_starts_empty(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        assert client.dbsize() == 0


def test_redis_restart_keeps_aof_persisted_key(redis_server: RedisServer, redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        client.set("refundry:durable", "kept")
    old_pid = redis_server.pid

    redis_server.stop()
    assert not redis_server.running
    redis_server.start()

    assert redis_server.pid != old_pid
    assert redis_url == redis_server.url
    with redis.Redis.from_url(redis_url) as client:
        assert client.get("refundry:durable") == b"kept"


def test_redis_kill_then_start(redis_server: RedisServer, redis_url: str) -> None:
    redis_server.kill()
    assert not redis_server.running
    with (
        redis.Redis.from_url(redis_url, socket_connect_timeout=1) as client,
        pytest.raises(redis.ConnectionError),
    ):
        client.ping()

    redis_server.start()
    with redis.Redis.from_url(redis_url) as client:
        assert client.ping()


@pytest.mark.postgres
def test_postgres_select_one(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        row = conn.execute("select current_database(), current_setting('server_version_num')")
        name, version = row.fetchone() or ("", "0")
    assert postgres_url.endswith("/" + name)
    assert int(version) >= 150000


@pytest.mark.postgres
def test_postgres_url_gives_a_fresh_database_each_time(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    other = postgres_server.create_database()
    try:
        assert other != postgres_url
        with psycopg.connect(postgres_url) as first, psycopg.connect(other) as second:
            first.execute("create table only_here (id int)")
            first.commit()
            found = second.execute("select to_regclass('only_here')").fetchone()
        assert found == (None,)
    finally:
        postgres_server.drop_database(other)


@pytest.mark.postgres
def test_postgres_restart_keeps_committed_row(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url) as conn:
        conn.execute("create table durable (id int primary key, note text)")
        conn.execute("insert into durable values (1, 'kept')")
    old_pid = postgres_server.postmaster_pid

    postgres_server.restart()

    assert postgres_server.postmaster_pid not in (None, old_pid)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("select note from durable").fetchall() == [("kept",)]


@pytest.mark.postgres
def test_postgres_kill_keeps_committed_row(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url) as conn:
        conn.execute("create table crash (id int primary key)")
        conn.execute("insert into crash values (7)")

    postgres_server.kill()
    assert not postgres_server.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres_url, connect_timeout=2).close()

    postgres_server.start()  # crash recovery
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("select id from crash").fetchall() == [(7,)]
