"""Stripe objects Stripe never made: ids of its shape it never gave out, and the issue's forged
paid session. Each names what it forges in its docstring."""

from __future__ import annotations

import time
import uuid
from typing import Any

Json = dict[str, Any]


def made_up(prefix: str) -> str:
    """An id shaped like Stripe's that Stripe never gave out."""
    return f"{prefix}_forged{uuid.uuid4().hex[:16]}"


def made_up_about(kind: str, prefix: str, charge: Json, **fields: Any) -> Json:
    """A ``kind`` object Stripe never made, naming a real ``charge`` and its PaymentIntent."""
    return {
        "id": made_up(prefix),
        "object": kind,
        "charge": charge["id"],
        "payment_intent": charge["payment_intent"],
        "created": int(time.time()),
        **fields,
    }


def forged_session(account: str, price: str) -> Json:
    """The issue's reproduction: a paid session Stripe never created, ``amount_total: 1``."""
    return {
        "id": made_up("cs_test"),
        "object": "checkout.session",
        "mode": "payment",
        "status": "complete",
        "payment_status": "paid",
        "amount_total": 1,
        "currency": "usd",
        "payment_intent": made_up("pi"),
        "client_reference_id": account,
        "customer": None,
        "metadata": {"price_id": price, "account_id": account},
        "created": int(time.time()),
    }
