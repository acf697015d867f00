"""The two yardsticks ``refundry bench`` runs Refundry against, as a dramatiq actors module.

- ``bench_noop``: bare dramatiq, an actor that does nothing, on the same Redis (dramatiq's
  default middleware, no Refundry middleware).
- ``bench_peer_refund``: the refund worker a platform writes itself: one database
  transaction per failure that inserts the refund under a unique key and, when the insert
  took, adds the credits to the balance. No inbox, no classification, no dead letters. Its
  SQL is written inline on purpose: it models the platform's code, not the ledger's.

Run by ``python -m dramatiq workers.bench_actors`` with ``REDIS_URL`` (or ``BROKER_URL``) and
``BENCH_PEER_DATABASE`` (a ``sqlite:///`` or ``postgresql://`` URL) in the environment.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Final

import dramatiq
import psycopg

from workers.broker import bare_broker

__all__ = [
    "BARE_QUEUE",
    "PEER_QUEUE",
    "PEER_SCHEMA",
    "bench_noop",
    "bench_peer_refund",
    "connect_peer",
    "create_peer_tables",
    "peer_refunds",
]

BARE_QUEUE: Final = "bench-bare"
PEER_QUEUE: Final = "bench-peer"
PEER_SCHEMA: Final = "refundry_bench"
"""On PostgreSQL the peer's tables live in their own schema, beside the ledger's."""

_TABLES: Final = (
    "CREATE TABLE IF NOT EXISTS peer_refunds ("
    " refund_key TEXT PRIMARY KEY, account_id TEXT NOT NULL, credits INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS peer_balances ("
    " account_id TEXT PRIMARY KEY, balance INTEGER NOT NULL)",
)

broker = bare_broker()  # REDIS_URL, or BROKER_URL=amqp://… for RabbitMQ
dramatiq.set_broker(broker)

_local = threading.local()


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def connect_peer(url: str) -> Any:
    """A new connection to the peer's database, in autocommit mode (transactions explicit).
    SQLite as the ledger opens it: WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE`` writes."""
    if _is_postgres(url):
        return psycopg.connect(url, autocommit=True, options=f"-c search_path={PEER_SCHEMA}")
    conn = sqlite3.connect(
        Path(url.removeprefix("sqlite:///")), isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA busy_timeout=60000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def create_peer_tables(url: str) -> None:
    """Create the peer's tables (and schema, on PostgreSQL) when missing."""
    conn = connect_peer(url)
    try:
        if _is_postgres(url):
            conn.execute("CREATE SCHEMA IF NOT EXISTS refundry_bench")  # = PEER_SCHEMA
        for statement in _TABLES:
            conn.execute(statement)
    finally:
        conn.close()


def peer_refunds(url: str, prefix: str) -> int:
    """How many refunds the peer committed under keys starting with ``prefix``."""
    conn = connect_peer(url)
    try:
        like = "SELECT count(*) FROM peer_refunds WHERE refund_key LIKE "
        if _is_postgres(url):
            row = conn.execute(like + "%s", (prefix + "%",)).fetchone()
        else:
            row = conn.execute(like + "?", (prefix + "%",)).fetchone()
        return int(row[0])
    finally:
        conn.close()


def _conn() -> Any:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = connect_peer(os.environ["BENCH_PEER_DATABASE"])
    return conn


@dramatiq.actor(queue_name=BARE_QUEUE, max_retries=0)
def bench_noop() -> None:
    """Nothing: what the broker and dramatiq cost alone."""


@dramatiq.actor(queue_name=PEER_QUEUE, max_retries=3)
def bench_peer_refund(refund_key: str, account_id: str, credits: int) -> None:
    """One transaction: the refund under its unique key, then the balance, once."""
    conn = _conn()
    if not isinstance(conn, sqlite3.Connection):
        with conn.transaction():
            _refund_in(conn, "%s", refund_key, account_id, credits)
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        _refund_in(conn, "?", refund_key, account_id, credits)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


_PEER_STATEMENTS: Final = {
    "%s": (
        "INSERT INTO peer_refunds VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        "INSERT INTO peer_balances VALUES (%s, %s) ON CONFLICT (account_id)"
        " DO UPDATE SET balance = peer_balances.balance + excluded.balance",
    ),
    "?": (
        "INSERT INTO peer_refunds VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1",
        "INSERT INTO peer_balances VALUES (?, ?) ON CONFLICT (account_id)"
        " DO UPDATE SET balance = peer_balances.balance + excluded.balance",
    ),
}
"""The peer's two statements, per driver placeholder (written out: SQL is never formatted)."""


def _refund_in(conn: Any, mark: str, refund_key: str, account_id: str, credits: int) -> None:
    """The peer's two statements; ``mark`` is the driver's parameter placeholder."""
    refund, balance = _PEER_STATEMENTS[mark]
    took = conn.execute(refund, (refund_key, account_id, credits)).fetchone()
    if took:
        conn.execute(balance, (account_id, credits))
