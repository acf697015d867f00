"""``refundry web`` answers 200 only for a row committed to the ledger it serves, and
``/readyz`` says ready only when that ledger takes a write: a SQLite file removed or
replaced under the running process, a write lock held by another process and a read-only
PostgreSQL are each refused (503), and ``/readyz`` never creates a ledger."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.ingress import IngressServer, base_env, body, inbox_rows, standard_headers, start
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

KLING = "whsec_" + "bGVkZ2VyLXdyaXRlcy1pbmdyZXNzLXNlY3JldC0zMmJ5dA=="
READY_BOUND_S = 5.0
"""``/readyz`` answers within this, whatever holds the database (its probe is bounded)."""


def _delivery() -> tuple[str, dict[str, str]]:
    text = body({"task_id": f"kt-{uuid.uuid4().hex[:10]}", "task_status": "failed"})
    return text, standard_headers(KLING, text, webhook_id=f"wh-{uuid.uuid4()}")


def _post(web: IngressServer) -> int:
    return web.post("kling", *_delivery()).status_code


def _ready(web: IngressServer) -> tuple[int, dict[str, bool], float]:
    started = time.monotonic()
    answer = web.http.get("/readyz")
    return answer.status_code, answer.json(), time.monotonic() - started


@pytest.fixture
def sqlite_web(tmp_path: Path, redis_server: RedisServer) -> Iterator[IngressServer]:
    env = base_env(tmp_path, redis_server) | {
        "KLING_WEBHOOK_SECRET": KLING,
        "REFUNDRY_INGRESS_DEADLINE_S": "3",
    }
    web = start(env, tmp_path)
    web.database_url = env["DATABASE_URL"]  # type: ignore[attr-defined]
    yield web
    web.close()


def _ledger_files(web: IngressServer) -> list[Path]:
    path = Path(web.database_url.removeprefix("sqlite:///"))  # type: ignore[attr-defined]
    return [path, *(path.with_name(path.name + end) for end in ("-wal", "-shm"))]


def test_a_delivery_after_the_sqlite_ledger_is_removed_is_503_and_readyz_creates_nothing(
    sqlite_web: IngressServer,
) -> None:
    assert _post(sqlite_web) == 200
    files = _ledger_files(sqlite_web)
    for file in files:
        file.unlink(missing_ok=True)

    assert [_post(sqlite_web) for _ in range(3)] == [503, 503, 503]
    status, checks, _ = _ready(sqlite_web)
    assert (status, checks) == (503, {"database": False, "broker": True})
    assert [file for file in files if file.exists()] == []  # nothing created in its place


def test_a_delivery_after_the_sqlite_ledger_is_replaced_is_503(
    sqlite_web: IngressServer,
) -> None:
    assert _post(sqlite_web) == 200
    ledger, *journals = _ledger_files(sqlite_web)
    for file in journals:
        file.unlink(missing_ok=True)
    ledger.unlink()
    ledger.write_bytes(b"this is not a database" * 100)

    assert _post(sqlite_web) == 503
    assert _ready(sqlite_web)[:2] == (503, {"database": False, "broker": True})
    assert ledger.read_bytes() == b"this is not a database" * 100


def test_readyz_is_503_while_another_process_holds_the_sqlite_write_lock(
    sqlite_web: IngressServer,
) -> None:
    assert _ready(sqlite_web)[:2] == (200, {"database": True, "broker": True})
    path = sqlite_web.database_url.removeprefix("sqlite:///")  # type: ignore[attr-defined]
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        status, checks, took = _ready(sqlite_web)
        assert (status, checks) == (503, {"database": False, "broker": True})
        assert took < READY_BOUND_S
        assert _post(sqlite_web) == 503  # what /readyz foretold
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _ready(sqlite_web)[:2] == (200, {"database": True, "broker": True})
    assert _post(sqlite_web) == 200


def _set_read_only(url: str, on: bool) -> None:
    """``default_transaction_read_only`` for the test's database (what a failover to a
    standby looks like to a client), then the other sessions dropped so that the ingress's
    pool reconnects under it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")  # this session may write
        name = conn.execute("SELECT current_database()").fetchone()
        assert name is not None
        database = psycopg.sql.Identifier(name[0])
        setting = "SET default_transaction_read_only = on" if on else "RESET ALL"
        conn.execute(psycopg.sql.SQL(f"ALTER DATABASE {{}} {setting}").format(database))
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_readyz_and_deliveries_are_503_while_postgresql_is_read_only(
    refundry_env: dict[str, str], tmp_path: Path
) -> None:
    env = refundry_env | {"KLING_WEBHOOK_SECRET": KLING, "REFUNDRY_INGRESS_DEADLINE_S": "3"}
    web = start(env, tmp_path)
    try:
        assert _post(web) == 200
        _set_read_only(env["DATABASE_URL"], True)
        try:
            wait_until(
                lambda: _ready(web)[:2] == (503, {"database": False, "broker": True}),
                timeout=15,
                message="/readyz said ready on a read-only database",
            )
            before = len(inbox_rows(env["DATABASE_URL"]))
            assert _post(web) == 503
            assert len(inbox_rows(env["DATABASE_URL"])) == before
        finally:
            _set_read_only(env["DATABASE_URL"], False)
        wait_until(
            lambda: _ready(web)[0] == 200, timeout=15, message="not ready once writable again"
        )
        assert _post(web) == 200
    finally:
        web.close()
