"""Rows as an earlier Refundry wrote them, for migration tests: plain SQL over the test's
own connection, so that they never depend on today's ledger code (which writes tables an
older schema does not have)."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

import psycopg

__all__ = ["old_rows", "sql"]


def sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement (``?`` placeholders on SQLite, ``%s`` on PostgreSQL) and commit."""
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as lite, lite:
            return lite.execute(statement, params).fetchall()
    with psycopg.connect(url, options="-c search_path=refundry") as conn:
        cur = conn.execute(statement.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []


def old_rows(url: str, *, account: str = "acct") -> None:
    """A grant of 100, a generation charged 30 and refunded, one charged 30 and kept, as a
    ledger at migration 0005 holds them (balance 70)."""
    sql(
        url,
        "INSERT INTO accounts (account_id, balance, updated_at_ms) VALUES (?, 70, 1)",
        (account,),
    )
    entry = (
        "INSERT INTO entries (idempotency_key, account_id, kind, amount, generation_id, reason,"
        " policy_version, created_at_ms, failure_known_at_ms, applied_at_ms)"
        " VALUES (?, ?, ?, ?, ?, 'r', 'before', 1, ?, 1)"
    )
    generation = (
        "INSERT INTO generations (generation_id, account_id, provider, provider_job_id,"
        " operation, credits, charged_at_ms, outcome, outcome_reason, outcome_at_ms)"
        " VALUES (?, ?, 'fal', ?, 'video', 30, 1, ?, 'r', 1)"
    )
    sql(url, entry, ("grant:top", account, "grant", 100, None, None))
    for gen, outcome in (("g1", "failed"), ("g2", "succeeded")):
        sql(url, generation, (gen, account, f"job-{gen}", outcome))
        sql(url, entry, (f"charge:{gen}", account, "charge", -30, gen, None))
    sql(url, entry, ("refund:g1", account, "refund", 30, "g1", 9))
