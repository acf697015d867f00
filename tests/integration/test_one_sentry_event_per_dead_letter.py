"""One Sentry event per dead letter, and one paging figure per cause.

An event dead-lettered on a transient error (``ChargeNotFound``: a result for a charge not
recorded yet) keeps its inbox row pending, so the inbox sweep sends it again and it may be
dead-lettered again: that is the same dead letter, not a new one, and it pages once. Its row
counts in ``refundry_dead_letters`` and not in ``refundry_inbox_pending``, so the two
paging rules of the README do not fire for one cause. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger
from tests.support.commands import WorkerProcesses
from tests.support.fake_sentry import FakeSentry
from tests.support.waiting import wait_until
from workers import client, runtime
from workers.demo_payloads import demo_payload
from workers.metrics import LedgerCollector


@pytest.fixture
def sentry() -> Iterator[FakeSentry]:
    with FakeSentry() as server:
        yield server


def _dead_letter_alerts(sentry: FakeSentry) -> list[dict[str, Any]]:
    return [e for e in sentry.events() if e.get("tags", {}).get("alert") == "dead-letter"]


def _record(ledger: Ledger, inbox_id: str, reason: str = "ChargeNotFound") -> bool:
    return ledger.dead.record(
        message_id=inbox_id,
        actor="process_result",
        queue="results",
        reason=f"{reason} generation_id=ghost",
        error_class=reason,
        message="{}",
        inbox_id=inbox_id,
        permanent=False,
    )


def test_one_sentry_event_per_dead_letter_when_the_sweep_sends_it_again(
    refundry_env: dict[str, str], sentry: FakeSentry, tmp_path: Path
) -> None:
    ghost = client.report_result(
        provider="kling", payload=demo_payload("kling", "ghost", "failed"), generation_id="ghost"
    )
    log = tmp_path / "workers.log"
    env = refundry_env | {"SENTRY_DSN": sentry.dsn, "REFUNDRY_MAX_RETRIES": "0"}
    workers = WorkerProcesses(env, log)
    workers.start(processes=1, threads=1)

    def dead_lettered() -> int:
        return log.read_text().count(f"dead-lettered {ghost}")

    try:
        wait_until(lambda: _dead_letter_alerts(sentry), timeout=60, message="no alert")
        runtime.enqueue("result", ghost)  # what the inbox sweep does with a pending row
        wait_until(lambda: dead_lettered() == 2, timeout=60, message="not dead-lettered again")
    finally:
        workers.stop()  # sentry-sdk flushes what it holds as the process exits

    assert runtime.ledger().inbox.get(ghost).state == "pending"  # type: ignore[union-attr]
    [alert] = _dead_letter_alerts(sentry)
    assert alert["fingerprint"] == ["dead-letter", "kling", "ChargeNotFound"]
    assert alert["contexts"]["refundry"]["inbox_id"] == ghost


def test_one_sentry_event_per_dead_letter_is_decided_by_the_ledger(ledger: Ledger) -> None:
    """``record`` answers whether it opened a dead letter: the first time, not while that
    dead letter is open, and again once it was released (replayed) and failed anew."""
    ledger.inbox.record(id="in_ghost", kind="result", provider="kling", payload={})
    assert _record(ledger, "in_ghost") is True
    assert _record(ledger, "in_ghost") is False
    assert _record(ledger, "in_ghost", reason="ProviderUnavailable") is False
    (kept,) = ledger.dead.all()
    assert kept["error_class"] == "ProviderUnavailable"  # the latest reason is shown
    ledger.dead.release("in_ghost", reopen=True)
    assert _record(ledger, "in_ghost") is True


def test_one_paging_figure_per_dead_letter_inbox_pending_leaves_out_open_dead_letters(
    ledger: Ledger,
) -> None:
    ledger.inbox.record(id="in_waiting", kind="result", provider="kling", payload={})
    ledger.inbox.record(id="in_ghost", kind="result", provider="kling", payload={})
    _record(ledger, "in_ghost")
    collector = LedgerCollector(lambda: ledger, sla_ms=3_600_000, landing_window_ms=600_000)
    figures = {m.name: m for m in collector.collect()}
    [pending] = figures["refundry_inbox_pending"].samples
    assert pending.value == 1  # in_waiting only: in_ghost is counted as a dead letter
    [dead] = figures["refundry_dead_letters"].samples
    assert dead.value == 1 and dead.labels == {"queue": "results", "reason": "ChargeNotFound"}
