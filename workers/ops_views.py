"""What the ops page shows, read from the ledger: SLA percentiles over a window, packs paid
and not landed, recent classification conflicts and alerts. Reads only: viewing the page
raises no alert and changes nothing (``handlers.sla.sla_report`` logs each breach, which
the scheduler's sweep does; here the same percentile is computed quietly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from handlers.sla import SlaReport, summarise
from ledger import Ledger, now_ms
from ledger.payments import Payment

__all__ = ["RECENT", "WINDOWS", "Overview", "overview", "sla_figures"]

WINDOWS: Final[dict[str, int]] = {
    "1h": 3_600_000,
    "24h": 86_400_000,
    "7d": 7 * 86_400_000,
    "30d": 30 * 86_400_000,
}
"""The SLA windows the page offers, by name → milliseconds."""

RECENT: Final = 20
"""Rows of each "recent" list."""


@dataclass(frozen=True, slots=True)
class Overview:
    window: str
    sla: SlaReport
    unlanded: list[Payment]
    conflicts: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    overdue: list[dict[str, Any]]


def sla_figures(ledger: Ledger, window: str, *, sla_ms: int) -> SlaReport:
    """``window`` is a key of :data:`WINDOWS` (an unknown one reads as ``24h``)."""
    window_ms = WINDOWS.get(window, WINDOWS["24h"])
    latencies = ledger.refund_latencies_ms(since_ms=now_ms() - window_ms)  # ascending
    return summarise(latencies, window_ms=window_ms, sla_ms=sla_ms)


def overview(
    ledger: Ledger, *, window: str, sla_ms: int, warn_ms: int, landing_window_ms: int
) -> Overview:
    """Everything the page's front shows but the dead letters."""
    now = now_ms()
    with ledger.db.read() as tx:
        conflicts = tx.all("ops_recent_conflicts", limit=RECENT)
        alerts = tx.all("ops_recent_alerts", limit=RECENT)
        overdue = tx.all("overdue_inbox", received_before_ms=now - warn_ms, limit=RECENT)
    return Overview(
        window=window if window in WINDOWS else "24h",
        sla=sla_figures(ledger, window, sla_ms=sla_ms),
        unlanded=ledger.payments.unlanded(paid_before_ms=now - landing_window_ms, limit=100),
        conflicts=[dict(r) for r in conflicts],
        alerts=[dict(r) for r in alerts],
        overdue=[dict(r) for r in overdue],
    )
