"""The pack the payment tests sell (one price of the fake Stripe's catalog) and the two
reconciliation policies, with a one-hour landing window."""

from __future__ import annotations

from handlers.packs import PackCatalog, PaymentPolicy

__all__ = ["AMOUNT", "CATALOG", "COMPLETE", "CREDITS", "PRICE", "REFUND", "WINDOW_MS"]

PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
CATALOG = PackCatalog({PRICE: CREDITS})
WINDOW_MS = 3_600_000
COMPLETE = PaymentPolicy(landing_window_ms=WINDOW_MS, unlanded_action="complete")
REFUND = PaymentPolicy(landing_window_ms=WINDOW_MS, unlanded_action="refund")
