"""``GET /metrics`` over HTTP after a run of real workers: every figure equals what the
ledger holds (read with the test's own SQL), on SQLite and PostgreSQL, from a web process
started after the run (so the figures come from the database, not from a process's memory)
and again from a restarted one. With an ops token only its bearer may scrape."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.commands import WorkerProcesses
from tests.support.ingress import IngressServer, start
from tests.support.ops import (
    OPS_TOKEN,
    counted,
    labelled,
    ledger_sql,
    refunds_by_provider_outcome,
    run_generations,
    scrape,
)


def test_metrics_after_a_run_equal_the_ledger(
    workers: WorkerProcesses, refundry_env: dict[str, str], tmp_path: Path
) -> None:
    workers.start(processes=1, threads=2)
    run_generations()
    url = refundry_env["DATABASE_URL"]
    web = start({**refundry_env, "REFUNDRY_OPS_TOKEN": OPS_TOKEN}, tmp_path)
    try:
        anonymous = httpx.get(f"{web.url}/metrics")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        wrong = httpx.get(f"{web.url}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        first = scrape(web.url)
    finally:
        web.close()

    refunds = refunds_by_provider_outcome(url)
    assert counted(refunds) == {
        ("kling", "failed"): 2.0,
        ("kling", "moderated"): 1.0,
        ("kling", "empty_success"): 1.0,
    }
    assert labelled(first, "refundry_refunds_total", "provider", "outcome") == counted(refunds)
    (latencies,) = ledger_sql(
        url,
        "SELECT count(*), sum(applied_at_ms - failure_known_at_ms) FROM entries "
        "WHERE kind = 'refund'",
    )
    assert first[("refundry_refund_latency_seconds_count", frozenset())] == latencies[0] == 4
    assert first[("refundry_refund_latency_seconds_sum", frozenset())] == int(latencies[1]) / 1000
    inf = ("refundry_refund_latency_seconds_bucket", frozenset({("le", "+Inf")}))
    assert first[inf] == 4
    assert first[("refundry_sla_breaches_total", frozenset())] == 0
    dead = ledger_sql(
        url,
        "SELECT queue, error_class, count(*) FROM dead_letters "
        "WHERE resolved_at_ms IS NULL GROUP BY queue, error_class",
    )
    assert counted(dead) == {("results", "ChargeNotFound"): 1.0}
    assert labelled(first, "refundry_dead_letters", "queue", "reason") == counted(dead)
    ((pending,),) = ledger_sql(url, "SELECT count(*) FROM inbox WHERE state = 'pending'")
    assert pending == 1  # the late result, waiting on its open dead letter: counted there
    assert first[("refundry_inbox_pending", frozenset())] == 0
    ((conflicts,),) = ledger_sql(
        url, "SELECT count(*) FROM outcome_reports WHERE disposition = 'conflict'"
    )
    assert first[("refundry_conflicts_total", frozenset())] == conflicts == 1
    assert first[("refundry_unlanded_packs", frozenset())] == 0
    assert labelled(first, "refundry_reconcile_actions_total", "action") == {}
    assert labelled(first, "refundry_webhooks_total", "route", "result") == {}

    again = start({**refundry_env, "REFUNDRY_OPS_TOKEN": OPS_TOKEN}, tmp_path)
    try:
        after_restart = scrape(again.url)
    finally:
        again.close()
    ledger_figures = {k: v for k, v in first.items() if not k[0].startswith("refundry_webhooks")}
    assert {k: after_restart[k] for k in ledger_figures} == ledger_figures


def test_without_an_ops_token_metrics_are_open_and_the_page_is_off(
    refundry_env: dict[str, str], tmp_path: Path
) -> None:
    web = start(refundry_env, tmp_path)
    try:
        samples = scrape(web.url, token=None)
        assert samples[("refundry_inbox_pending", frozenset())] == 0
        for path in ("/ops", "/ops/", "/ops/login", "/ops/dead-letters/m1"):
            assert httpx.get(f"{web.url}{path}").status_code == 404, path
        refused = httpx.post(f"{web.url}/ops/dead-letters/m1/purge", data={})
        assert refused.status_code == 404
    finally:
        web.close()


def test_webhook_counts_summed_over_web_processes_whichever_answers_the_scrape(
    refundry_env: dict[str, str], tmp_path: Path
) -> None:
    """``refundry web -p 2``: deliveries land in either process; every scrape, whichever
    process answers it, shows their sum (prometheus-client's multiprocess mode)."""
    web = IngressServer(refundry_env, tmp_path / "web.log")
    try:
        web.start("-p", "2")
        for _ in range(12):  # a new connection each: the kernel spreads them over processes
            answer = httpx.post(f"{web.url}/webhooks/stripe", content=b"{}")
            assert answer.status_code == 404  # the route is off without its secret
        scrapes = [
            httpx.get(f"{web.url}/metrics", headers={"Connection": "close"}) for _ in range(8)
        ]
    finally:
        web.close()
    for scraped in scrapes:
        assert scraped.status_code == 200
        line = 'refundry_webhooks_total{result="disabled",route="stripe"} '
        [count] = [s for s in scraped.text.splitlines() if s.startswith(line)]
        assert float(count.removeprefix(line)) == 12
    folder = Path(refundry_env["REFUNDRY_HOME"]) / "prometheus"
    assert folder.stat().st_mode & 0o777 == 0o700
