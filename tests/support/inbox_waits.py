"""Waiting for the workers to apply events kept in the inbox."""

from __future__ import annotations

from collections.abc import Sequence

from ledger import Ledger
from tests.support.waiting import wait_until

__all__ = ["wait_processed"]


def wait_processed(ledger: Ledger, ids: Sequence[str], what: str, timeout: float = 60) -> None:
    """Wait (at most ``timeout`` s) until every inbox row of ``ids`` is processed."""

    def all_processed() -> bool:
        items = [ledger.inbox.get(i) for i in ids]
        return all(item is not None and item.state == "processed" for item in items)

    wait_until(all_processed, timeout=timeout, message=f"{what} not all processed")
