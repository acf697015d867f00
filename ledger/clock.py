"""Time as the ledger stores it: integer epoch milliseconds (UTC)."""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    return int(time.time() * 1000)
