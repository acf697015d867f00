"""The interface both ledger databases implement (``ledger.backends``): transactions that
run named queries, and the helpers their implementations share."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from ledger.errors import LedgerError

__all__ = ["Database", "Row", "Tx", "required", "split_statements"]

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

    def schema_change(self) -> AbstractContextManager[Tx]:
        """The write transaction a migration runs in."""
        ...

    def probe_write(self, timeout_s: float) -> None:
        """Prove that the ledger takes a write now: one row rewritten in a write transaction
        that is rolled back, all within ``timeout_s`` seconds. Creates nothing. Raises
        ``LedgerUnavailable`` (locked, read-only, unreachable, removed or replaced)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def required(row: Row | None) -> Row:
    """A row the caller's own transaction just wrote or locked: its absence is a bug."""
    if row is None:
        raise LedgerError("row vanished inside its own transaction")
    return row


def split_statements(sql: str) -> list[str]:
    """Split a migration into statements (our migrations have no ``;`` inside literals)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
