"""The per-process objects every entry point shares: settings, ledger, refund policy.

Built lazily, once per process (a forked worker builds its own), from the environment.
"""

from __future__ import annotations

import threading
from functools import cache

from handlers.generation import RefundPolicy
from ledger import Ledger, open_ledger
from workers.settings import Settings

__all__ = ["ledger", "policy", "reset", "settings"]

_lock = threading.Lock()


@cache
def settings() -> Settings:
    return Settings.from_env()


_ledger: Ledger | None = None


def ledger() -> Ledger:
    """The process's ledger; migrations are applied on first open."""
    global _ledger
    with _lock:
        if _ledger is None:
            s = settings()
            _ledger = open_ledger(
                s.database_url, policy_version=s.policy_version, pg_schema=s.pg_schema
            )
        return _ledger


def policy() -> RefundPolicy:
    return RefundPolicy(refund_cancelled=settings().refund_cancelled)


def reset() -> None:
    """Forget the cached settings and ledger (the environment changed, e.g. in tests)."""
    global _ledger
    with _lock:
        if _ledger is not None:
            _ledger.db.close()
        _ledger = None
        settings.cache_clear()
