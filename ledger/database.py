"""The interface both ledger databases implement (``ledger.backends``): transactions that
run named queries, and the helpers their implementations share."""

from __future__ import annotations

import re
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
    """Split a migration into statements (our migrations have no ``;`` inside literals).

    A ``;`` inside a ``$$``-quoted body (a PostgreSQL function) or inside a SQLite trigger's
    ``BEGIN … END`` does not end its statement."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    statements: list[str] = []
    current = ""
    quoted = False
    for piece in re.split(r"(\$\$|;)", "\n".join(lines)):
        if piece == "$$":
            quoted = not quoted
        elif piece == ";" and not quoted and not _open_trigger(current):
            statements.append(current.strip())
            current = ""
            continue
        current += piece
    statements.append(current.strip())
    return [s for s in statements if s]


_TRIGGER = re.compile(r"\s*CREATE\s+TRIGGER\b.*\bBEGIN\b", re.IGNORECASE | re.DOTALL)


def _open_trigger(statement: str) -> bool:
    """Whether ``statement`` is a SQLite trigger whose ``BEGIN … END`` body is not closed."""
    return bool(_TRIGGER.match(statement)) and not statement.rstrip().upper().endswith("END")
