"""Migration 0006 (whole credits) on a ledger that already holds money: every row is kept,
the foreign keys still hold, and from then on the schema itself refuses an out-of-range
amount (and, on SQLite, a fractional one). On SQLite (tables rebuilt) and PostgreSQL
(constraints added). Rows are read over a connection of the test's own."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

import psycopg
import pytest

from ledger import Ledger, Outcome, audit, migrate, open_database
from ledger.queries import migrations
from tests.support.old_ledger import old_rows

TABLES = ("accounts", "entries", "generations", "outcome_reports")


def _sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn, conn:
            return conn.execute(statement).fetchall()
    with psycopg.connect(url, options="-c search_path=refundry") as conn:
        cur = conn.execute(statement.encode())
        return cur.fetchall() if cur.description else []


def _columns(url: str, table: str) -> list[str]:
    if url.startswith("sqlite:///"):
        return [str(r[1]) for r in _sql(url, f"PRAGMA table_info({table})")]
    query = f"SELECT column_name FROM information_schema.columns WHERE table_schema = 'refundry' AND table_name = '{table}' ORDER BY ordinal_position"  # noqa: E501
    return [str(r[0]) for r in _sql(url, query)]


def _snapshot(url: str, columns: dict[str, list[str]]) -> dict[str, list[str]]:
    """Every row of the money tables, as ``columns`` (table → the columns it held before
    migration 0006: a later migration may add columns, and rows keep every value they had)."""
    return {
        t: sorted(map(repr, _sql(url, f"SELECT {', '.join(columns[t])} FROM {t}"))) for t in TABLES
    }


def _charge_and_settle(book: Ledger, gen: str, outcome: Outcome) -> None:
    book.charge(
        generation_id=gen,
        account_id="acct",
        provider="fal",
        operation="video",
        credits=30,
        provider_job_id=f"job-{gen}",
        poll_after_ms=60_000,
        deadline_after_ms=600_000,
    )
    bad = outcome is Outcome.FAILED
    book.settle(generation_id=gen, outcome=outcome, reason="r", refund=bad, failure_known_at_ms=9)


def test_an_existing_ledger_keeps_every_row_and_gains_the_constraints(ledger_url: str) -> None:
    db = open_database(ledger_url)
    try:
        assert len(migrate(db, up_to=5)) == 5
        columns = {t: _columns(ledger_url, t) for t in TABLES}
        old_rows(ledger_url)  # as Refundry wrote them then: today's code writes newer tables
        book = Ledger(db, policy_version="after-0006")
        before = _snapshot(ledger_url, columns)

        assert migrate(db) == [name for v, name, _ in migrations(db.dialect) if v > 5]

        assert _snapshot(ledger_url, columns) == before
        assert book.balance("acct") == 70
        assert audit(db) == []
        _charge_and_settle(book, "g3", Outcome.FAILED)  # still writable, foreign keys intact
        assert book.balance("acct") == 70
    finally:
        db.close()
    refused = (sqlite3.IntegrityError, psycopg.errors.CheckViolation)
    with pytest.raises(refused):
        _sql(ledger_url, "UPDATE entries SET amount = 1000000000001 WHERE kind = 'grant'")
    with pytest.raises(refused):
        _sql(ledger_url, "UPDATE generations SET credits = 1000000000001")
    if ledger_url.startswith("sqlite:///"):
        for statement in (
            "UPDATE accounts SET balance = 69.5",
            "UPDATE entries SET amount = 99.5 WHERE kind = 'grant'",
            "UPDATE generations SET credits = 29.5",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
                _sql(ledger_url, statement)
    assert _sql(ledger_url, "SELECT balance FROM accounts") == [(70,)]
