"""The credit ledger: SQLite (embedded default) and PostgreSQL behind one interface."""

from __future__ import annotations

from ledger.audit import Violation, audit
from ledger.backends import Database, open_database
from ledger.book import Ledger
from ledger.clock import now_ms
from ledger.generations import Generation, Settlement
from ledger.inbox import Inbox, InboxItem
from ledger.migrations import migrate
from ledger.outcomes import REFUNDABLE, TERMINAL, Outcome

__all__ = [
    "REFUNDABLE",
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
    "migrate",
    "now_ms",
    "open_database",
    "open_ledger",
]


def open_ledger(url: str, *, policy_version: str, pg_schema: str = "refundry") -> Ledger:
    """Open the database at ``url``, apply pending migrations, return its ledger."""
    db = open_database(url, pg_schema=pg_schema)
    migrate(db)
    return Ledger(db, policy_version=policy_version)
