"""One slow or broken provider delays no other refund: past the hard deadline a generation
is refunded without a poll; polls run concurrently inside one budget per sweep; one
generation's unexpected failure is alerted and the sweep goes on.

A provider's status API is reached through a ``JobFetcher``; here the hanging one is a
fetcher that blocks until the test ends, as a status API that never answers does."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from handlers.stuck_sweep import StuckSweepResult
from ledger import Ledger, Outcome
from tests.support.stuck import MINUTE, charge_stuck, sweep_at


@pytest.fixture
def hanging() -> Iterator[Any]:
    release = threading.Event()
    asked: list[str] = []

    def fetch(provider: str, job_id: str) -> Mapping[str, Any]:
        asked.append(job_id)
        release.wait(timeout=120)
        raise AssertionError("a hanging status API never answers")

    fetch.asked = asked  # type: ignore[attr-defined]
    yield fetch
    release.set()


def _failed(provider: str, job_id: str) -> Mapping[str, Any]:
    return {"id": job_id, "status": "failed", "error": "upstream outage"}


def _charge(ledger: Ledger, gen: str, provider: str) -> int:
    return charge_stuck(ledger, gen=gen, provider=provider, job=f"job{gen}")


def _sweep(ledger: Ledger, fetchers: Mapping[str, Any], at_ms: int) -> StuckSweepResult:
    return sweep_at(ledger, fetchers, at_ms, poll_budget_s=0.5)


def _outcome(ledger: Ledger, gen: str) -> Outcome | None:
    generation = ledger.generation(gen)
    assert generation is not None
    return generation.outcome


def test_a_generation_past_its_hard_deadline_is_refunded_without_waiting_for_a_poll(
    ledger: Ledger, hanging: Any
) -> None:
    charged = _charge(ledger, "g1", "kling")

    result = _sweep(ledger, {"kling": hanging}, charged + 46 * MINUTE)

    assert (result.refunded_as_lost, result.polled) == (1, 0)
    assert hanging.asked == []
    assert _outcome(ledger, "g1") is Outcome.FAILED


def test_one_hanging_provider_does_not_hold_up_another_providers_refunds(
    ledger: Ledger, hanging: Any
) -> None:
    charged = _charge(ledger, "g1", "kling")
    _charge(ledger, "g2", "replicate")

    result = _sweep(ledger, {"kling": hanging, "replicate": _failed}, charged + 11 * MINUTE)

    assert (result.polled, result.settled_by_poll, result.unanswered) == (2, 1, 1)
    assert _outcome(ledger, "g2") is Outcome.FAILED
    assert _outcome(ledger, "g1") is None, "an unanswered poll changes nothing"
    assert ledger.balance("acct") == 1000 - 25


def test_an_unexpected_error_for_one_generation_is_isolated(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(provider: str, job_id: str) -> Mapping[str, Any]:
        raise ValueError("a bug in one poller")

    charged = _charge(ledger, "g1", "kling")
    _charge(ledger, "g2", "replicate")

    result = _sweep(ledger, {"kling": broken, "replicate": _failed}, charged + 11 * MINUTE)

    assert (result.errors, result.settled_by_poll) == (1, 1)
    assert _outcome(ledger, "g2") is Outcome.FAILED
    assert any("generation g1 failed" in r.getMessage() for r in caplog.records)
