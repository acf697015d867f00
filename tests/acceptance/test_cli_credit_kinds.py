"""``refundry ledger balance --kinds``: the balance, then the credits held and each kind's."""

from __future__ import annotations

from pathlib import Path

from ledger import open_ledger
from ledger.lots import PACK
from tests.support.commands import clean_env, refundry


def test_ledger_balance_shows_held_credits_and_each_kind(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    book = open_ledger(env["DATABASE_URL"], policy_version="t")
    try:
        book.grant(account_id="acct", credits=30, idempotency_key="p", reason="t", terms=PACK)
        book.grant(account_id="acct", credits=12, idempotency_key="q", reason="t")
        book.charge(
            generation_id="g",
            account_id="acct",
            provider="fal",
            operation="video",
            credits=20,
            mode="hold",
        )
    finally:
        book.db.close()

    done = refundry(env, "ledger", "balance", "--kinds", "acct")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "42",
        "held 20",
        "kind pack 30 held 20",  # both never expire: the older grant is spent first
        "kind promo 12 held 0",
    ]
    plain = refundry(env, "ledger", "balance", "acct")
    assert plain.stdout.splitlines() == ["42"]  # unchanged without the flag
