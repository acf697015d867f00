"""The one place a ledger entry is written.

Every effect on credits (a grant, a charge, a refund, a claw-back, a restore, an expiry) is
one row of ``entries`` under a unique idempotency key (``ledger.keys``); a key already taken
writes nothing. The caller changes the balance and moves the credit lots (``ledger.lots``)
in the same transaction, and only when the entry was written now.
"""

from __future__ import annotations

from ledger.backends import Tx
from ledger.clock import now_ms
from ledger.redaction import redact_text

__all__ = ["insert_entry"]


def insert_entry(
    tx: Tx,
    *,
    key: str,
    account_id: str,
    kind: str,
    amount: int,
    reason: str,
    policy_version: str,
    generation_id: str | None = None,
    failure_known_at_ms: int | None = None,
    purchase_key: str | None = None,
) -> bool:
    """Insert one entry (``amount`` in whole credits, signed: negative takes credits) under
    ``key``, decided under ``policy_version``; True when written now, False when the key
    was taken already. ``reason`` is stored as ``ledger.redaction`` leaves it."""
    fields = {
        "idempotency_key": key,
        "account_id": account_id,
        "kind": kind,
        "amount": amount,
        "reason": redact_text(reason),
        "policy_version": policy_version,
        "now_ms": now_ms(),
    }
    if purchase_key is not None:
        row = tx.one("insert_pack_entry", **fields, purchase_key=purchase_key)
    else:
        row = tx.one(
            "insert_entry",
            **fields,
            generation_id=generation_id,
            failure_known_at_ms=failure_known_at_ms,
        )
    return row is not None
