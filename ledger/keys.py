"""Every idempotency key Refundry writes, in one place.

Ledger entry keys are unique in ``entries``: an effect applied twice finds its key taken and
changes nothing. Each key names the identity of what caused the effect (the generation, the
purchase, the refund or dispute), never a running total or a fresh uuid, so a redelivered or
raced event makes the same key. The payment provider's idempotency key for our own refund
of a purchase is derived the same way, so a rerun of the job never refunds twice.
"""

from __future__ import annotations

__all__ = ["charge", "clawback", "grant", "pack", "provider_refund", "refund", "restore"]


def grant(idempotency_key: str) -> str:
    """A grant of credits the caller keys itself (a top-up, a promotion)."""
    return f"grant:{idempotency_key}"


def charge(generation_id: str) -> str:
    """The charge of a generation."""
    return f"charge:{generation_id}"


def refund(generation_id: str) -> str:
    """The refund of a generation's charge (at most one per generation)."""
    return f"refund:{generation_id}"


def pack(purchase_key: str) -> str:
    """The grant of a paid pack (at most one per purchase)."""
    return f"pack:{purchase_key}"


def clawback(purchase_key: str, cause: str) -> str:
    """Credits taken back from a purchase because of ``cause``: a refund or dispute id,
    ``at-grant`` for money already gone when the pack landed, or ``refunded`` for what was
    left when the purchase was refunded in full."""
    return f"clawback:{purchase_key}:{cause}"


def restore(purchase_key: str, cause: str) -> str:
    """Credits a claw-back took given back, because its cause (a refund id) failed."""
    return f"restore:{purchase_key}:{cause}"


def provider_refund(purchase_key: str, attempt: int = 0) -> str:
    """The payment provider's idempotency key for our refund of a purchase: attempt 0 is the
    first key; each later attempt (recorded in the ledger, made after a failed call and a
    look at the provider's refunds) has its own, numbered: never a random key."""
    if attempt < 0:
        raise ValueError("attempt must be 0 or more")
    suffix = f"-{attempt}" if attempt else ""
    return f"refundry-refund-{purchase_key}{suffix}"
