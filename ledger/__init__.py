"""The credit ledger: SQLite (embedded default) and PostgreSQL behind one interface."""

from __future__ import annotations

from ledger.audit import Violation, audit
from ledger.backends import Database, database_location, open_database
from ledger.book import Ledger
from ledger.clock import now_ms
from ledger.generations import Generation, Settlement
from ledger.inbox import Inbox, InboxItem
from ledger.migrations import migrate
from ledger.outcomes import TERMINAL, Outcome

__all__ = [
    "TERMINAL",
    "Database",
    "Generation",
    "Inbox",
    "InboxItem",
    "Ledger",
    "Outcome",
    "Settlement",
    "Violation",
    "audit",
    "database_location",
    "migrate",
    "now_ms",
    "open_database",
    "open_ledger",
]


def open_ledger(
    url: str,
    *,
    policy_version: str,
    pg_schema: str = "refundry",
    create: bool = True,
    max_connections: int = 10,
    application_name: str | None = None,
) -> Ledger:
    """Open the database at ``url``, apply pending migrations, return its ledger.
    ``max_connections`` and ``application_name``: its PostgreSQL pool (``open_database``).

    With ``create=False`` a ledger that does not exist yet raises ``LedgerNotFound`` and
    nothing is created; see ``open_database`` for the other errors.
    """
    db = open_database(
        url,
        pg_schema=pg_schema,
        create=create,
        max_connections=max_connections,
        application_name=application_name,
    )
    try:
        migrate(db)
    except BaseException:
        db.close()
        raise
    return Ledger(db, policy_version=policy_version)
