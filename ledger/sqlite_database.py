"""The embedded ledger database: one SQLite file in WAL mode.

Each write runs in one transaction that holds the write lock from its first statement:
``BEGIN IMMEDIATE`` (a deferred transaction that reads then writes fails at once with
"database is locked"). One connection per thread (sqlite3 objects are thread-bound).

**The file is the ledger.** A process keeps its connections open, and an open file outlives
its name: once the ledger file is removed or replaced while the process runs, those
connections would go on committing to a file nobody else can see, lost when the process
exits. So the file's identity (device and inode) is taken when the database is opened, and
every transaction checks that the path still names that file: when it begins, and once a
write has committed, so that a caller told "committed" knows the row is in the ledger every
other process reads. Otherwise ``LedgerUnavailable``, until the process is restarted.
Connections open the file read-write without creating it (SQLite's ``mode=rw`` URI
parameter): only opening the database, once, creates the file.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_random_exponential

from ledger.database import Row, Tx, split_statements
from ledger.errors import ConfigurationError, LedgerError, LedgerUnavailable
from ledger.private_files import private_folder
from ledger.queries import query

__all__ = ["SqliteDatabase"]

FileIdentity = tuple[int, int]
"""``(st_dev, st_ino)``: which file a path names."""


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
        for statement in split_statements(sql):
            self._conn.execute(statement)


class SqliteDatabase:
    """SQLite in WAL mode at ``path`` (created 0600 when missing). Raises
    ``ConfigurationError`` when its folder cannot be created; every transaction raises
    ``LedgerUnavailable`` once the file at ``path`` is not the one opened here."""

    dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout_s: float = 60.0) -> None:
        self.path = path
        self._uri = f"{path.absolute().as_uri()}?mode=rw"
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
        self._identity = _identity(path)

    def _check_file(self) -> None:
        """``LedgerUnavailable`` unless ``path`` still names the file opened as the ledger."""
        found = _identity(self.path)
        if found is not None and found == self._identity:
            return
        raise LedgerUnavailable(
            "the ledger file was removed or replaced while this process had it open; "
            "nothing more is written here until the process is restarted",
            location=str(self.path),
            now="missing" if found is None else "another file",
        )

    def _connect(self, timeout_s: float) -> sqlite3.Connection:
        self._check_file()
        return sqlite3.connect(
            self._uri,
            uri=True,
            timeout=timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(self._busy_timeout_s)
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
            self._check_file()
            yield _SqliteTx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._check_file()  # the commit reached the ledger others read, or the caller hears

    @contextmanager
    def read(self) -> Iterator[Tx]:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            self._check_file()
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

    def probe_write(self, timeout_s: float) -> None:
        """On a connection of its own (so no other caller's wait can stretch it): the write
        lock taken within ``timeout_s`` (SQLite's busy timeout), one row rewritten, rolled
        back. ``LedgerUnavailable`` when locked that long, read-only, removed or replaced."""
        try:
            conn = self._connect(timeout_s)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(query("write_probe", "sqlite"))
                conn.execute("ROLLBACK")
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise LedgerUnavailable(
                "the ledger does not take a write", location=str(self.path), error=str(exc)
            ) from exc
        self._check_file()

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def _identity(path: Path) -> FileIdentity | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


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
