"""What the on-call tests share: a run of generations through real workers (refunds of
several outcomes and providers, a conflict, a dead letter whose cause can be fixed),
``/metrics`` scraped and parsed with ``prometheus_client``'s own parser, and the ledger
read with the test's own SQL over a connection of its own (never through Refundry's
queries, which the figures are checked against).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from ledger import Ledger
from tests.support.waiting import wait_until
from workers import client, runtime
from workers.demo_payloads import demo_payload

__all__ = [
    "LATE_GENERATION",
    "LATE_JOB",
    "OPS_TOKEN",
    "Samples",
    "charge_late_generation",
    "counted",
    "labelled",
    "ledger_sql",
    "refunds_by_provider_outcome",
    "run_generations",
    "scrape",
]

OPS_TOKEN = "ops-token-for-tests-0123456789abcdef"
LATE_JOB = "job-late"
"""A failed job reported before its charge: dead-lettered (``ChargeNotFound``) until the
charge is recorded and the dead letter replayed."""
LATE_GENERATION = "g-late"

# (generation, provider job, what the provider reports); every generation costs 10 credits.
_RUN: tuple[tuple[str, str, str], ...] = (
    ("g-failed-1", "job-failed-1", "failed"),
    ("g-failed-2", "job-failed-2", "failed"),
    ("g-moderated", "job-moderated", "moderated"),
    ("g-empty", "job-empty", "empty_success"),
    ("g-ok", "job-ok", "succeeded"),
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def run_generations() -> str:
    """Charge the run's generations, report their results, a contradicting success for
    ``g-failed-1`` once its failure is applied (a conflict), and :data:`LATE_JOB`'s failure
    with no charge. Waits (bounded) until the workers have applied all and dead-lettered
    the late one; returns the late result's message id."""
    client.grant(account_id="acct", credits=1000, idempotency_key="top-up", reason="test")
    for generation, job, _ in _RUN:
        _charge(generation, job)
    for _, job, outcome in _RUN:
        client.report_result(provider="kling", payload=demo_payload("kling", job, outcome))
    late = client.report_result(provider="kling", payload=demo_payload("kling", LATE_JOB, "failed"))
    ledger = runtime.ledger()

    def settled() -> bool:
        return all((g := ledger.generation(gen)) and g.outcome for gen, _, _ in _RUN)

    wait_until(settled, timeout=60, message="the workers did not apply the results")
    client.report_result(
        provider="kling", payload=demo_payload("kling", "job-failed-1", "succeeded")
    )
    wait_until(
        lambda: ledger.dead.get(late) is not None,
        timeout=60,
        message="the late result was not dead-lettered",
    )
    wait_until(
        lambda: len(ledger.outcome_reports("g-failed-1")) == 2,
        timeout=60,
        message="the contradicting success was not recorded",
    )
    return late


def charge_late_generation() -> None:
    """The fix of the dead letter's cause: the charge the late result names."""
    _charge(LATE_GENERATION, LATE_JOB)


def _charge(generation: str, job: str) -> None:
    client.charge(
        generation_id=generation,
        account_id="acct",
        provider="kling",
        operation="video",
        credits=10,
        provider_job_id=job,
    )


def ledger_sql(url: str, query: str) -> list[tuple[Any, ...]]:
    """Rows of ``query`` over the ledger at ``url`` (SQLite or PostgreSQL)."""
    if url.startswith(("postgresql://", "postgres://")):
        with psycopg.connect(url, options="-c search_path=refundry") as conn:
            return [tuple(r) for r in conn.execute(query.encode()).fetchall()]
    conn_ = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return [tuple(r) for r in conn_.execute(query).fetchall()]
    finally:
        conn_.close()


def refunds_by_provider_outcome(url: str) -> list[tuple[Any, ...]]:
    """``(provider, outcome, n)`` of the refund entries."""
    return ledger_sql(
        url,
        "SELECT g.provider, g.outcome, count(*) FROM entries e "
        "JOIN generations g ON g.generation_id = e.generation_id "
        "WHERE e.kind = 'refund' GROUP BY g.provider, g.outcome",
    )


def scrape(base_url: str, token: str | None = OPS_TOKEN) -> Samples:
    """Every sample of ``GET /metrics``, by name and labels; fails on any answer but 200."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.get(f"{base_url}/metrics", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.status_code
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def labelled(samples: Samples, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """The samples of ``name`` by the values of ``labels``, in that order."""
    found = {}
    for (sample, pairs), value in samples.items():
        if sample == name:
            by = dict(pairs)
            found[tuple(by[label] for label in labels)] = value
    return found


def counted(rows: Sequence[tuple[Any, ...]]) -> dict[tuple[str, ...], float]:
    """``(label…, n)`` rows as :func:`labelled` gives them."""
    return {tuple(str(v) for v in row[:-1]): float(row[-1]) for row in rows}


def dead_letter_for_the_page(ledger: Ledger, inbox_id: str = "in_dead") -> None:
    """One open dead letter (a result whose charge is missing) for the ops page to show."""
    ledger.inbox.record(id=inbox_id, kind="result", provider="kling", payload={})
    ledger.dead.record(
        message_id=inbox_id,
        actor="process_result",
        queue="results",
        reason="ChargeNotFound generation_id=ghost",
        error_class="ChargeNotFound",
        message="{}",
        inbox_id=inbox_id,
    )
