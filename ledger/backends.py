"""The two databases the ledger runs on, behind one small interface.

SQLite is the embedded default (one file under ``.refundry/``); PostgreSQL is production,
with the tables in their own schema. Each write runs in one transaction that holds the
write lock from its first statement: ``BEGIN IMMEDIATE`` on SQLite (a deferred transaction
that reads then writes fails at once with "database is locked"), row locks (``FOR UPDATE``)
on PostgreSQL.

Opening a database that cannot be reached fails within ``CONNECT_TIMEOUT_S`` with
``LedgerUnavailable`` naming where it looked (never the password); opened with
``create=False``, a ledger that does not exist yet raises ``LedgerNotFound`` and nothing
is created. A ``DATABASE_URL`` is parsed here (``ledger.server_urls``) before libpq sees it:
one that cannot be used (another scheme, a libpq key/value string, a password that is not
percent-encoded, a bad port) raises ``ConfigurationError`` without repeating it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any, Final, Protocol

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_random_exponential

from ledger.errors import (
    ConfigurationError,
    LedgerError,
    LedgerNotFound,
    LedgerUnavailable,
)
from ledger.private_files import private_folder
from ledger.queries import query, to_pyformat
from ledger.server_urls import ServerURL, parse_server_url

__all__ = [
    "CONNECT_TIMEOUT_S",
    "SUPPORTED_SCHEMES",
    "Database",
    "PostgresDatabase",
    "SqliteDatabase",
    "Tx",
    "database_location",
    "open_database",
    "required",
]

Row = dict[str, Any]

#: The URL schemes ``open_database`` understands (a plain path is a SQLite file too).
SUPPORTED_SCHEMES: Final[tuple[str, ...]] = ("postgresql://", "postgres://", "sqlite:///")
#: How long opening a PostgreSQL ledger may take to reach its server.
CONNECT_TIMEOUT_S: Final[int] = 5
#: How long a PostgreSQL read or write waits for a pooled connection before
#: ``LedgerUnavailable`` (the server is down, or every connection is busy).
CHECKOUT_TIMEOUT_S: Final[float] = 10.0


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

    def schema_change(self) -> AbstractContextManager[Tx]:
        """The write transaction a migration runs in."""
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
        try:
            _private_file(path)
        except OSError as exc:
            raise ConfigurationError(
                "cannot create the ledger's folder", folder=str(path.parent), error=exc.strerror
            ) from exc

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

    @contextmanager
    def schema_change(self) -> Iterator[Tx]:
        """A write transaction with foreign keys off, checked before it commits: SQLite's
        documented way to rebuild a table other tables reference
        (https://www.sqlite.org/lang_altertable.html#otheralter). The pragma is a no-op
        inside a transaction, so it is set before ``BEGIN`` and restored after."""
        conn = self._conn()
        conn.execute("PRAGMA foreign_keys=OFF")
        try:
            with self.write() as tx:
                yield tx
                broken = conn.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise LedgerError("a migration broke a foreign key", table=broken[0][0])
        finally:
            conn.execute("PRAGMA foreign_keys=ON")

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
    private_folder(path.parent)
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
    """PostgreSQL through a psycopg connection pool; tables in their own schema.

    Raises ``LedgerUnavailable`` when the server cannot be reached within
    ``CONNECT_TIMEOUT_S`` (at open) or no pooled connection frees up within
    ``CHECKOUT_TIMEOUT_S`` (later); with ``create=False``, ``LedgerNotFound`` when the
    schema holds no ledger.
    """

    dialect = "postgresql"

    def __init__(
        self,
        url: str,
        schema: str = "refundry",
        max_connections: int = 10,
        *,
        create: bool = True,
    ) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ConfigurationError("invalid schema name", schema=schema)
        self.schema = schema
        self.location = database_location(url, pg_schema=schema)
        self._parsed = _postgres_url(url)
        self._probe(url, create)
        self._pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={
                "row_factory": dict_row,
                "options": f"-c search_path={schema}",
                "connect_timeout": CONNECT_TIMEOUT_S,
            },
            # A server restart leaves dead connections in the pool: check each on checkout.
            check=ConnectionPool.check_connection,
            timeout=CHECKOUT_TIMEOUT_S,
            open=True,
        )

    def _probe(self, url: str, create: bool) -> None:
        """One direct connection first, so that an unreachable server is one clear error
        now instead of the pool's timeout on first use."""
        try:
            with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT to_regclass(%s) IS NOT NULL AS found",
                    (f"{self.schema}.schema_migrations",),
                ).fetchone()
        except psycopg.OperationalError as exc:
            raise LedgerUnavailable(
                "cannot reach the ledger's database",
                location=self.location,
                error=_one_line(str(exc), self._parsed),
            ) from exc
        if not create and not (row and row[0]):
            raise _not_found(self.location)

    def write(self) -> AbstractContextManager[Tx]:
        return self._transaction()

    def read(self) -> AbstractContextManager[Tx]:
        return self._transaction()

    def schema_change(self) -> AbstractContextManager[Tx]:
        return self._transaction()  # DDL is transactional on PostgreSQL

    @contextmanager
    def _transaction(self) -> Iterator[Tx]:
        with ExitStack() as stack:
            try:
                conn = stack.enter_context(self._pool.connection())
            except PoolTimeout as exc:
                raise LedgerUnavailable(
                    "no connection to the ledger's database",
                    location=self.location,
                    waited_s=CHECKOUT_TIMEOUT_S,
                ) from exc
            with conn.transaction():
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


def _not_found(location: str) -> LedgerNotFound:
    return LedgerNotFound(
        "no ledger here: point DATABASE_URL or REFUNDRY_HOME at yours, or create one "
        "(refundry ledger migrate)",
        location=location,
    )


def _one_line(text: str, url: ServerURL) -> str:
    """A driver's error message as one line, without the URL's password."""
    line = " ".join(text.split())
    return line.replace(url.password, "***") if url.password else line


_KEY_VALUE = re.compile(r"\s*+[A-Za-z_]++\s*+=")
"""The start of a libpq key/value string (``host=… password=…``)."""


def _postgres_url(url: str) -> ServerURL:
    return parse_server_url(url, variable="DATABASE_URL", schemes=("postgresql", "postgres"))


def _is_postgres(url: str) -> bool:
    return url.lower().startswith(SUPPORTED_SCHEMES[:2])


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix(SUPPORTED_SCHEMES[2])).absolute()


def database_location(url: str, *, pg_schema: str = "refundry") -> str:
    """Where a ledger URL points, for people: the SQLite file's absolute path, or the
    PostgreSQL server, database and schema. Built from the parsed URL without its password
    or query, so it is safe to print. Raises ``ConfigurationError`` for a URL it cannot use:
    another scheme (naming the supported ones), a libpq key/value string, a PostgreSQL URL
    that is ambiguous or has a bad port (``ledger.server_urls``)."""
    if _is_postgres(url):
        return f"{_postgres_url(url).location} (schema {pg_schema})"
    supported = ", ".join(SUPPORTED_SCHEMES)
    if "://" in url and not url.startswith(SUPPORTED_SCHEMES[2]):
        scheme = url.split("://", 1)[0]
        raise ConfigurationError(
            "unsupported DATABASE_URL scheme",
            variable="DATABASE_URL",
            scheme=scheme if re.fullmatch(r"[\w+.-]{1,32}", scheme) else "?",
            supported=supported,
        )
    if _KEY_VALUE.match(url):
        raise ConfigurationError(
            "a libpq key/value string is not supported: use a postgresql:// URL",
            variable="DATABASE_URL",
            supported=supported,
        )
    return str(_sqlite_path(url))


def open_database(url: str, *, pg_schema: str = "refundry", create: bool = True) -> Database:
    """``sqlite:///path`` or a plain path → SQLite; ``postgresql://…`` → PostgreSQL.

    With ``create=False`` nothing is created: a ledger that does not exist yet raises
    ``LedgerNotFound``. Raises ``ConfigurationError`` for another scheme (naming the
    supported ones) and ``LedgerUnavailable`` for a server it cannot reach.
    """
    location = database_location(url, pg_schema=pg_schema)
    if _is_postgres(url):
        return PostgresDatabase(url, schema=pg_schema, create=create)
    path = _sqlite_path(url)
    if not create and not path.is_file():
        raise _not_found(location)
    return SqliteDatabase(path)
