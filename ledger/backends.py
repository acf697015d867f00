"""The two databases the ledger runs on, behind one small interface.

SQLite is the embedded default (one file under ``.refundry/``, ``ledger.sqlite_database``);
PostgreSQL is production, with the tables in their own schema. Each write runs in one
transaction that holds the write lock from its first statement: ``BEGIN IMMEDIATE`` on
SQLite (a deferred transaction that reads then writes fails at once with "database is
locked"), row locks (``FOR UPDATE``) on PostgreSQL. The interface is ``ledger.database``.

Opening a database that cannot be reached fails within ``CONNECT_TIMEOUT_S`` with
``LedgerUnavailable`` naming where it looked (never the password); opened with
``create=False``, a ledger that does not exist yet raises ``LedgerNotFound`` and nothing
is created. A ``DATABASE_URL`` is parsed here (``ledger.server_urls``) before libpq sees it:
one that cannot be used (another scheme, a libpq key/value string, a password that is not
percent-encoded, a bad port) raises ``ConfigurationError`` without repeating it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql as psql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from ledger.database import Database, Row, Tx, required, split_statements
from ledger.errors import ConfigurationError, LedgerNotFound, LedgerUnavailable
from ledger.queries import query, to_pyformat
from ledger.server_urls import ServerURL, parse_server_url
from ledger.sqlite_database import SqliteDatabase

__all__ = [
    "CONNECT_TIMEOUT_S",
    "SUPPORTED_SCHEMES",
    "Database",
    "PostgresDatabase",
    "Row",
    "SqliteDatabase",
    "Tx",
    "database_location",
    "open_database",
    "required",
]


#: The URL schemes ``open_database`` understands (a plain path is a SQLite file too).
SUPPORTED_SCHEMES: Final[tuple[str, ...]] = ("postgresql://", "postgres://", "sqlite:///")
#: How long opening a PostgreSQL ledger may take to reach its server.
CONNECT_TIMEOUT_S: Final[int] = 5
#: How long a PostgreSQL read or write waits for a pooled connection before
#: ``LedgerUnavailable`` (the server is down, or every connection is busy).
CHECKOUT_TIMEOUT_S: Final[float] = 10.0


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
        for statement in split_statements(sql):
            self._conn.execute(statement.encode())

    def raw(self, sql: str, params: dict[str, Any]) -> list[Row]:
        return self._sql(sql, params)

    def create_schema(self, schema: str) -> None:
        """``CREATE SCHEMA IF NOT EXISTS``, the name quoted by psycopg's composition (SQL is
        never built by formatting, even from a checked name)."""
        statement = psql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(psql.Identifier(schema))
        self._conn.execute(statement)


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
        application_name: str | None = None,
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
                **({"application_name": application_name} if application_name else {}),
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

    def probe_write(self, timeout_s: float) -> None:
        """A pooled connection within ``timeout_s``, then one row rewritten and rolled back
        under statement and lock timeouts of ``timeout_s``: ``LedgerUnavailable`` when the
        server is down, every connection busy, the row locked that long, or the database
        read-only (``default_transaction_read_only``, a standby after a failover)."""
        budget_ms = str(max(1, int(timeout_s * 1000)))
        try:
            with (
                self._pool.connection(timeout=timeout_s) as conn,
                conn.transaction(force_rollback=True),
            ):
                conn.execute(
                    "SELECT set_config('statement_timeout', %(ms)s, true),"
                    " set_config('lock_timeout', %(ms)s, true)",
                    {"ms": budget_ms},
                )
                _PostgresTx(conn).all("write_probe")
        except PoolTimeout as exc:
            raise LedgerUnavailable(
                "no connection to the ledger's database", location=self.location, waited_s=timeout_s
            ) from exc
        except psycopg.Error as exc:
            raise LedgerUnavailable(
                "the ledger does not take a write",
                location=self.location,
                error=type(exc).__name__,
            ) from exc

    def close(self) -> None:
        self._pool.close()


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


def open_database(
    url: str,
    *,
    pg_schema: str = "refundry",
    create: bool = True,
    max_connections: int = 10,
    application_name: str | None = None,
) -> Database:
    """``sqlite:///path`` or a plain path → SQLite; ``postgresql://…`` → PostgreSQL, through
    a pool of at most ``max_connections``, each connection named ``application_name``
    (``pg_stat_activity``) when given.

    With ``create=False`` nothing is created: a ledger that does not exist yet raises
    ``LedgerNotFound``. Raises ``ConfigurationError`` for another scheme (naming the
    supported ones) and ``LedgerUnavailable`` for a server it cannot reach.
    """
    location = database_location(url, pg_schema=pg_schema)
    if _is_postgres(url):
        return PostgresDatabase(
            url,
            schema=pg_schema,
            create=create,
            max_connections=max_connections,
            application_name=application_name,
        )
    path = _sqlite_path(url)
    if not create and not path.is_file():
        raise _not_found(location)
    return SqliteDatabase(path)
