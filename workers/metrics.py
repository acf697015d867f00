"""Prometheus metrics of ``GET /metrics`` (text format, ``prometheus_client``).

Figures that every worker host contributes to (refunds, their latency, SLA breaches, dead
letters, the inbox, unlanded packs, reconciliation's decisions) are read from the ledger
when scraped, by a custom collector: they are true across hosts and after restarts, and any
web process answers the same. Webhook deliveries are counted by the web process that
received them (refusals are never stored), in prometheus-client's multiprocess mode under
``refundry web`` (``workers.metrics_folder``): any of its processes answers their sum.

| metric | type | labels |
| --- | --- | --- |
| ``refundry_refunds_total`` | counter | ``provider``, ``outcome`` |
| ``refundry_refund_latency_seconds`` | histogram (failure known → refund committed) | |
| ``refundry_sla_breaches_total`` | counter (refunds later than ``REFUNDRY_REFUND_SLA_MS``) | |
| ``refundry_dead_letters`` | gauge (unresolved) | ``queue``, ``reason`` (error class) |
| ``refundry_inbox_pending`` | gauge (not applied, no open dead letter) | |
| ``refundry_unlanded_packs`` | gauge (paid, not landed past the landing window) | |
| ``refundry_webhooks_total`` | counter | ``route``, ``result`` |
| ``refundry_reconcile_actions_total`` | counter | ``action`` |
| ``refundry_conflicts_total`` | counter (contradicting outcomes, never applied) | |
| ``refundry_api_requests_total`` | counter (HTTP API answers) | ``operation``, ``status`` |
| ``refundry_events_out_total`` | counter (events out delivered, attempts retried) | ``result`` |
| ``refundry_events_out_pending`` | gauge (ledger effects not delivered yet) | |

An event out given up on is a dead letter too: ``refundry_dead_letters{queue="events_out"}``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector

from ledger import Ledger, now_ms
from ledger.errors import EventNotDelivered
from ledger.outbox import Outbox, OutboxFigures
from workers.metrics_folder import VARIABLE

__all__ = [
    "CONTENT_TYPE",
    "LATENCY_BUCKETS_S",
    "LedgerCollector",
    "count_api_request",
    "count_webhook",
    "exposition",
    "registry",
]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""What ``generate_latest`` writes: the text exposition format 0.0.4."""

LATENCY_BUCKETS_S: Final = (1, 5, 30, 60, 300, 900, 1800, 2700, 3600, 7200)
"""Upper bounds of the refund latency histogram, in seconds: the SLA is one hour and its
warning 45 minutes, both bounds (exactly ten: ``ops_refund_latency_buckets`` counts ten)."""


def _n(row: Any, column: str = "n") -> int:
    return int(row[column] or 0)


class LedgerCollector:
    """The ledger's figures, read in one read transaction per scrape."""

    def __init__(
        self, ledger: Callable[[], Ledger], *, sla_ms: int, landing_window_ms: int
    ) -> None:
        self._ledger = ledger
        self._sla_ms = sla_ms
        self._landing_window_ms = landing_window_ms

    def collect(self) -> Iterator[Metric]:
        buckets = {f"le{i}": bound * 1000 for i, bound in enumerate(LATENCY_BUCKETS_S)}
        with self._ledger().db.read() as tx:
            refunds = tx.all("ops_refunds_by_provider_outcome")
            latency = tx.one("ops_refund_latency_buckets", sla_ms=self._sla_ms, **buckets)
            dead = tx.all("ops_dead_letters_by_reason")
            pending = tx.one("ops_count_inbox_pending")
            unlanded = tx.one(
                "ops_count_unlanded_payments", paid_before_ms=now_ms() - self._landing_window_ms
            )
            decisions = tx.all("ops_decisions_by_kind")
            conflicts = tx.one("ops_count_conflicts")
        events = Outbox(self._ledger().db).figures()
        family = CounterMetricFamily(
            "refundry_refunds", "Refunds of generations", labels=["provider", "outcome"]
        )
        for r in refunds:
            family.add_metric([str(r["provider"]), str(r["outcome"])], _n(r))
        yield family
        yield _latency(latency)
        yield CounterMetricFamily(
            "refundry_sla_breaches",
            f"Refunds committed more than {self._sla_ms // 1000} s after the failure was known",
            value=_n(latency, "breaches"),
        )
        gauge = GaugeMetricFamily(
            "refundry_dead_letters",
            "Dead letters not resolved, by queue and reason (the error's class)",
            labels=["queue", "reason"],
        )
        for r in dead:
            gauge.add_metric([str(r["queue"]), str(r["error_class"])], _n(r))
        if events.dead:
            gauge.add_metric(["events_out", EventNotDelivered.__name__], events.dead)
        yield gauge
        yield GaugeMetricFamily(
            "refundry_inbox_pending",
            "Inbox events not applied and not dead-lettered (those are refundry_dead_letters)",
            value=_n(pending),
        )
        yield GaugeMetricFamily(
            "refundry_unlanded_packs",
            "Paid packs not landed past the landing window",
            value=_n(unlanded),
        )
        actions = CounterMetricFamily(
            "refundry_reconcile_actions",
            "Decisions recorded about purchases (grants, refunds, alerts …)",
            labels=["action"],
        )
        for r in decisions:
            actions.add_metric([str(r["decision"])], _n(r))
        yield actions
        yield CounterMetricFamily(
            "refundry_conflicts",
            "Contradicting outcomes reported after a generation's first, never applied",
            value=_n(conflicts),
        )
        yield from _events_out(events)


def _events_out(events: OutboxFigures) -> Iterator[Metric]:
    delivery = CounterMetricFamily(
        "refundry_events_out",
        "Events out to REFUNDRY_EVENTS_URL: delivered, and attempts retried",
        labels=["result"],
    )
    delivery.add_metric(["delivered"], events.delivered)
    delivery.add_metric(["retried"], events.retries)
    yield delivery
    yield GaugeMetricFamily(
        "refundry_events_out_pending",
        "Ledger effects whose event is not delivered yet (nor dead-lettered)",
        value=events.pending,
    )


def _latency(row: Any) -> HistogramMetricFamily:
    counts = [(str(float(b)), _n(row, f"le{i}")) for i, b in enumerate(LATENCY_BUCKETS_S)]
    return HistogramMetricFamily(
        "refundry_refund_latency_seconds",
        "From the failure becoming known to its refund committed",
        buckets=[*counts, ("+Inf", _n(row))],
        sum_value=_n(row, "sum_ms") / 1000,
    )


_WEBHOOKS = Counter(
    "refundry_webhooks",
    "Webhook deliveries by route and result",
    labelnames=["route", "result"],
    registry=None,  # served by registry(), never by prometheus-client's global one
)


def count_webhook(route: str, result: str) -> None:
    """Count one webhook delivery (``Ingress(on_count=…)``): in this process's memory, or,
    under ``refundry web`` (``workers.metrics_folder``), in its file of the multiprocess
    folder, which every web process's scrape sums."""
    _WEBHOOKS.labels(route=route, result=result).inc()


_API_REQUESTS = Counter(
    "refundry_api_requests",
    "HTTP API answers by operation and status",
    labelnames=["operation", "status"],
    registry=None,
)


def count_api_request(operation: str, status: int) -> None:
    """Count one answer of the HTTP API (``workers.api``), the way :func:`count_webhook`
    counts a delivery: ``operation`` is the OpenAPI operation id."""
    _API_REQUESTS.labels(operation=operation, status=str(status)).inc()


def registry(
    ledger: Callable[[], Ledger],
    *,
    sla_ms: int,
    landing_window_ms: int,
) -> CollectorRegistry:
    """A registry of the ledger's figures and the webhook counts (not the process-global
    one): with ``PROMETHEUS_MULTIPROC_DIR`` set, the counts of every web process summed
    (``MultiProcessCollector``), else this process's. ``generate_latest(registry)`` is the
    page."""
    found = CollectorRegistry(auto_describe=False)
    found.register(LedgerCollector(ledger, sla_ms=sla_ms, landing_window_ms=landing_window_ms))
    if os.environ.get(VARIABLE):
        MultiProcessCollector(found)  # type: ignore[no-untyped-call]  # untyped upstream
    else:
        found.register(_WEBHOOKS)
        found.register(_API_REQUESTS)
    return found


def exposition(found: CollectorRegistry) -> bytes:
    """The text format of everything ``found`` collects."""
    return generate_latest(found)
