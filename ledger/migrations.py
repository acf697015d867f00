"""Versioned schema migrations, applied by whichever process opens the ledger first.

Several processes may start at once on an empty database: the whole check-and-apply runs in
one transaction under a lock (``BEGIN IMMEDIATE`` on SQLite, a transaction-level advisory
lock on PostgreSQL), and DDL is transactional on both, so exactly one of them applies each
migration and the others see it done. On SQLite the transaction runs with foreign keys off
and checked before commit (``SqliteDatabase.schema_change``), so that a migration may
rebuild a table other tables reference.
"""

from __future__ import annotations

import time

from ledger.backends import Database, PostgresDatabase, _PostgresTx
from ledger.queries import migrations

__all__ = ["migrate"]

# An arbitrary constant: the advisory lock that serializes Refundry migrations.
_PG_MIGRATION_LOCK = 0x52_45_46_55_4E_44  # "REFUND"

_TRACKING_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version       INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    applied_at_ms BIGINT NOT NULL
)
"""


def migrate(db: Database, *, up_to: int | None = None) -> list[str]:
    """Apply every migration not applied yet (or only those numbered ``up_to`` and below);
    return the names applied by this call."""
    applied_now: list[str] = []
    with db.schema_change() as tx:
        if isinstance(db, PostgresDatabase):
            assert isinstance(tx, _PostgresTx)
            tx.raw("SELECT pg_advisory_xact_lock(%(key)s)", {"key": _PG_MIGRATION_LOCK})
            tx.create_schema(db.schema)
        tx.script(_TRACKING_TABLE)
        done = {row["version"] for row in tx.all("applied_migrations")}
        for version, name, sql in migrations(db.dialect):
            if version in done or (up_to is not None and version > up_to):
                continue
            tx.script(sql)
            tx.all("record_migration", version=version, name=name, now_ms=int(time.time() * 1000))
            applied_now.append(name)
    return applied_now
