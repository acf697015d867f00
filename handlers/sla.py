"""The refund SLA, measured: how long from a failure becoming known to its refund.

Every refund entry stores ``failure_known_at_ms``, the moment the failure became knowable
(when the result reached Refundry's inbox; for a generation no result settled, its hard
deadline; for a job the provider no longer knows, the poll that found it, or the hard
deadline if earlier), and ``applied_at_ms``, so a refund made late is seen late. The report
counts them over a window; an alert fires for each breach and for every event still
unapplied at the warning age (45 minutes by default, so a human has 15 minutes before the
hour is up).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from handlers.alerts import alert
from ledger import Ledger, now_ms

__all__ = [
    "REFUND_SLA_MS",
    "WARN_MS",
    "SlaReport",
    "overdue_events",
    "percentile",
    "sla_report",
    "summarise",
]

log = logging.getLogger("refundry.sla")

REFUND_SLA_MS = 3_600_000
"""The promise: a failed generation's credits are back within one hour of the failure."""
WARN_MS = 45 * 60_000
"""An event still unapplied this long raises an alert: a human has 15 minutes left."""


@dataclass(frozen=True, slots=True)
class SlaReport:
    window_ms: int
    sla_ms: int
    count: int
    p50_ms: int | None
    p99_ms: int | None
    max_ms: int | None
    breaches: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(ordered: list[int], q: float) -> int | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def sla_report(ledger: Ledger, *, window_ms: int, sla_ms: int = REFUND_SLA_MS) -> SlaReport:
    """Refund latencies of the refunds applied in the last ``window_ms``."""
    with ledger.db.read() as tx:
        rows = tx.all("refunds_in_window", since_ms=now_ms() - window_ms)
    latencies = sorted(int(r["applied_at_ms"]) - int(r["failure_known_at_ms"]) for r in rows)
    breaches = [r for r in rows if int(r["applied_at_ms"]) - int(r["failure_known_at_ms"]) > sla_ms]
    for r in breaches:
        late_ms = int(r["applied_at_ms"]) - int(r["failure_known_at_ms"])
        log.error(
            "SLA breach: generation %s refunded %d ms after its failure was known",
            r["generation_id"],
            late_ms,
            extra={"generation_id": r["generation_id"]},
        )
        alert(
            "sla-breach",
            f"SLA breach: a refund applied {late_ms} ms after its failure was known",
            provider=r["provider"] or "unknown",
            reason="refund-late",
            about={"generation_id": r["generation_id"]},
        )
    return summarise(latencies, window_ms=window_ms, sla_ms=sla_ms)


def summarise(latencies: list[int], *, window_ms: int, sla_ms: int) -> SlaReport:
    """The figures of refund latencies (ms, ascending) measured over ``window_ms``; no alert
    (the ops page shows them)."""
    return SlaReport(
        window_ms=window_ms,
        sla_ms=sla_ms,
        count=len(latencies),
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else None,
        breaches=sum(1 for latency in latencies if latency > sla_ms),
    )


def overdue_events(
    ledger: Ledger, *, warn_ms: int = WARN_MS, limit: int = 100
) -> list[dict[str, Any]]:
    """Events still unapplied ``warn_ms`` after they arrived; each raises an alert."""
    with ledger.db.read() as tx:
        rows = tx.all("overdue_inbox", received_before_ms=now_ms() - warn_ms, limit=limit)
    for r in rows:
        log.error(
            "SLA warning: %s event %s (generation %s) unapplied for %d s",
            r["kind"],
            r["id"],
            r["generation_id"],
            (now_ms() - int(r["received_at_ms"])) // 1000,
            extra={"inbox_id": r["id"], "generation_id": r["generation_id"]},
        )
        alert(
            "sla-overdue",
            f"SLA warning: a {r['kind']} event unapplied for over {warn_ms // 1000} s",
            provider=r["provider"] or "unknown",
            reason=f"{r['kind']}-unapplied",
            about={"inbox_id": r["id"], "generation_id": r["generation_id"]},
        )
    return rows
