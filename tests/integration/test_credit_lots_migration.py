"""Migration 0017 (credit kinds) on a ledger that already holds money, on SQLite and
PostgreSQL: each balance becomes one never-expiring opening lot (``pack`` for an account
that bought packs, ``promo`` otherwise), the audit holds, and a generation charged before
the migration and refunded after it gives back to that opening lot."""

from __future__ import annotations

from ledger import Ledger, Outcome, audit, migrate, open_database
from tests.support.old_ledger import old_rows, sql


def test_existing_balances_get_a_kind_and_old_charges_refund_into_it(ledger_url: str) -> None:
    db = open_database(ledger_url)
    try:
        migrate(db, up_to=16)
        old_rows(ledger_url)  # acct: 70
        sql(ledger_url, "UPDATE accounts SET balance = 40 WHERE account_id = 'acct'")
        sql(
            ledger_url,
            "INSERT INTO generations (generation_id, account_id, provider, provider_job_id,"
            " operation, credits, charged_at_ms) VALUES ('g3', 'acct', 'fal', 'job-g3', 'video',"
            " 30, 1)",
        )
        sql(
            ledger_url,
            "INSERT INTO entries (idempotency_key, account_id, kind, amount, generation_id,"
            " reason, policy_version, created_at_ms, applied_at_ms) VALUES ('charge:g3', 'acct',"
            " 'charge', -30, 'g3', 'r', 'before', 1, 1)",
        )
        sql(ledger_url, "INSERT INTO accounts VALUES ('buyer', 500, 1)")
        sql(
            ledger_url,
            "INSERT INTO entries (idempotency_key, account_id, kind, amount, reason,"
            " policy_version, created_at_ms, applied_at_ms, purchase_key) VALUES"
            " ('pack:pi_old', 'buyer', 'grant', 500, 'r', 'before', 1, 1, 'pi_old')",
        )

        migrate(db)
        book = Ledger(db, policy_version="after-0017")
        assert book.funds("acct").kinds == {"promo": (40, 0)}
        assert book.funds("buyer").kinds == {"pack": (500, 0)}
        assert audit(db) == []

        refund = book.settle(
            generation_id="g3",
            outcome=Outcome.FAILED,
            reason="x",
            refund=True,
            failure_known_at_ms=1,
        )
        assert refund.value == "refunded"
        assert book.funds("acct").kinds == {"promo": (70, 0)}
        assert book.balance("acct") == 70
        assert audit(db) == []
    finally:
        db.close()
