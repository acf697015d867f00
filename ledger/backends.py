"""The two databases the ledger runs on, behind one small interface.

SQLite is the embedded default (one file under ``.refundry/``); PostgreSQL is production,
with the tables in their own schema. Each write runs in one transaction that holds the
write lock from its first statement: ``BEGIN IMMEDIATE`` on SQLite (a deferred transaction
that reads then writes fails at once with "database is locked"), row locks (``FOR UPDATE``)
on PostgreSQL.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_random_exponential

from ledger.errors import ConfigurationError, LedgerError
from ledger.queries import query, to_pyformat

__all__ = [
    "Database",
    "PostgresDatabase",
    "SqliteDatabase",
    "Tx",
    "open_database",
    "required",
]

Row = dict[str, Any]


class Tx(Protocol):
    """One open transaction (or one read)."""

    def all(self, name: str, /, **params: Any) -> list[Row]:
        """Run the named query, return every row."""
        ...

    def one(self, name: str, /, **params: Any) -> Row | None:
        """Run the named query, return its first row or None."""
        ...

    def script(self, sql: str) -> None:
        """Run raw DDL (migrations only)."""
        ...


class Database(Protocol):
    dialect: str

    def write(self) -> AbstractContextManager[Tx]:
        """One write transaction, committed on success."""
        ...

    def read(self) -> AbstractContextManager[Tx]:
        """A consistent read."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def all(self, name: str, /, **params: Any) -> list[Row]:
        cur = self._conn.execute(query(name, "sqlite"), params)
        return [dict(row) for row in cur.fetchall()]

    def one(self, name: str, /, **params: Any) -> Row | None:
        rows = self.all(name, **params)
        return rows[0] if rows else None

    def script(self, sql: str) -> None:
        # executescript() would COMMIT first and break the migration's transaction.
        for statement in _split_statements(sql):
            self._conn.execute(statement)


class SqliteDatabase:
    """SQLite in WAL mode; one connection per thread (sqlite3 objects are thread-bound)."""

    dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout_s: float = 60.0) -> None:
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        _private_file(path)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            _enable_wal(conn)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def write(self) -> Iterator[Tx]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SqliteTx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[Tx]:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield _SqliteTx(conn)
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


@retry(
    retry=retry_if_exception_type(sqlite3.OperationalError),
    wait=wait_random_exponential(multiplier=0.01, max=0.5),
    stop=stop_after_delay(30),
    reraise=True,
)
def _private_file(path: Path) -> None:
    """Create the ledger file readable by its owner only (0600; folders it creates 0700):
    it holds balances and event payloads. SQLite gives its -wal and -shm files the same
    mode as the database file."""
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        status = path.stat()
        if status.st_mode & 0o077 and status.st_uid == os.getuid():
            path.chmod(0o600)


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switching a new database to WAL takes an exclusive lock and, unlike ordinary writes,
    does not wait on the busy handler: several processes opening it at once retry here."""
    conn.execute("PRAGMA journal_mode=WAL")


class _PostgresTx:
    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self._conn = conn

    def all(self, name: str, /, **params: Any) -> list[Row]:
        return self._sql(to_pyformat(query(name, "postgresql")), params)

    def one(self, name: str, /, **params: Any) -> Row | None:
        rows = self.all(name, **params)
        return rows[0] if rows else None

    def _sql(self, sql: str, params: dict[str, Any]) -> list[Row]:
        cur = self._conn.execute(sql.encode(), params)
        return list(cur.fetchall()) if cur.description else []

    def script(self, sql: str) -> None:
        for statement in _split_statements(sql):
            self._conn.execute(statement.encode())

    def raw(self, sql: str, params: dict[str, Any]) -> list[Row]:
        return self._sql(sql, params)


_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresDatabase:
    """PostgreSQL through a psycopg connection pool; tables in their own schema."""

    dialect = "postgresql"

    def __init__(self, url: str, schema: str = "refundry", max_connections: int = 10) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ConfigurationError("invalid schema name", schema=schema)
        self.schema = schema
        self._pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"row_factory": dict_row, "options": f"-c search_path={schema}"},
            # A server restart leaves dead connections in the pool: check each on checkout.
            check=ConnectionPool.check_connection,
            open=True,
        )

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self._pool.connection() as conn, conn.transaction():
            yield _PostgresTx(conn)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._pool.connection() as conn, conn.transaction():
            yield _PostgresTx(conn)

    def close(self) -> None:
        self._pool.close()


def required(row: Row | None) -> Row:
    """A row the caller's own transaction just wrote or locked: its absence is a bug."""
    if row is None:
        raise LedgerError("row vanished inside its own transaction")
    return row


def _split_statements(sql: str) -> list[str]:
    """Split a migration into statements (our migrations have no ``;`` inside literals)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def open_database(url: str, *, pg_schema: str = "refundry") -> Database:
    """``sqlite:///path`` or a plain path → SQLite; ``postgresql://…`` → PostgreSQL."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url, schema=pg_schema)
    if url.startswith("sqlite:///"):
        return SqliteDatabase(Path(url.removeprefix("sqlite:///")))
    if "://" in url:
        raise ConfigurationError("unsupported DATABASE_URL scheme", url=url.split("://", 1)[0])
    return SqliteDatabase(Path(url))
