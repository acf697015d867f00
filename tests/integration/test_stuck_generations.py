"""Charges with no terminal outcome: polled through the provider's status API (a real local
HTTP server answering like the Videos API), refunded once when lost. Time is injected into
the sweep (``at_ms``), never slept through. The Videos client's own retries (429 with
Retry-After, 5xx) are ``test_sora_thin_webhook``'s subject, not repeated here."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from handlers.stuck_sweep import SYSTEM_FAILURE
from ledger import Ledger, Outcome, audit, now_ms
from providers.openai_api import VideosClient
from tests.support.fake_videos_api import FakeVideosAPI, Reply, video
from tests.support.status_cases import MINUTE, sweep_at


@pytest.fixture
def videos_api() -> Iterator[FakeVideosAPI]:
    api = FakeVideosAPI()
    api.start()
    yield api
    api.close()


@pytest.fixture
def fetchers(videos_api: FakeVideosAPI) -> Iterator[dict[str, Any]]:
    client = VideosClient(
        videos_api.url,
        "sk-test",
        max_attempts=3,
        max_wait_s=1.5,
        backoff_base_s=0.01,
    )

    def fetch(provider: str, job_id: str) -> Mapping[str, Any]:
        return client.retrieve(job_id)

    yield {"openai": fetch}
    client.close()


def _charge(ledger: Ledger, gen: str, provider: str = "openai") -> int:
    ledger.grant(account_id="acct", credits=1000, idempotency_key="top", reason="t")
    ledger.charge(
        generation_id=gen,
        account_id="acct",
        provider=provider,
        operation="video",
        credits=25,
        provider_job_id=f"video_{gen}",
        poll_after_ms=10 * MINUTE,
        deadline_after_ms=45 * MINUTE,
    )
    g = ledger.generation(gen)
    assert g is not None
    return g.charged_at_ms


def test_nothing_is_polled_before_its_poll_time(
    ledger: Ledger, fetchers: dict[str, Any], videos_api: FakeVideosAPI
) -> None:
    charged = _charge(ledger, "g1")
    assert sweep_at(ledger, fetchers, charged + 9 * MINUTE).looked_at == 0
    assert videos_api.seen() == []


def test_pending_forever_is_refunded_once_at_the_hard_deadline(
    ledger: Ledger, fetchers: dict[str, Any], videos_api: FakeVideosAPI
) -> None:
    videos_api.script("video_g1", Reply(200, video("video_g1", "in_progress")))
    charged = _charge(ledger, "g1")
    first = sweep_at(ledger, fetchers, charged + 11 * MINUTE)
    assert (first.polled, first.still_pending) == (1, 1)
    assert ledger.balance("acct") == 975
    assert sweep_at(ledger, fetchers, charged + 11 * MINUTE + 30_000).looked_at == 0  # leased
    lost = sweep_at(ledger, fetchers, charged + 45 * MINUTE)
    assert lost.refunded_as_lost == 1
    assert sweep_at(ledger, fetchers, charged + 50 * MINUTE).looked_at == 0
    gen = ledger.generation("g1")
    assert gen is not None and gen.outcome is Outcome.FAILED
    assert gen.outcome_reason is not None and gen.outcome_reason.startswith(SYSTEM_FAILURE)
    assert ledger.balance("acct") == 1000
    assert audit(ledger.db) == []


def test_a_job_the_provider_no_longer_knows_is_refunded_at_once(
    ledger: Ledger, fetchers: dict[str, Any], videos_api: FakeVideosAPI
) -> None:
    charged = _charge(ledger, "g1")  # unscripted id: the fake answers 404
    result = sweep_at(ledger, fetchers, charged + 11 * MINUTE)
    assert result.refunded_as_lost == 1
    gen = ledger.generation("g1")
    assert gen is not None and gen.outcome_reason is not None
    assert "HTTP 404" in gen.outcome_reason
    assert ledger.balance("acct") == 1000


def test_a_provider_without_a_status_client_is_refunded_at_the_hard_deadline(
    ledger: Ledger, fetchers: dict[str, Any]
) -> None:
    charged = _charge(ledger, "g1", provider="kling")
    assert sweep_at(ledger, fetchers, charged + 11 * MINUTE).polled == 0
    assert sweep_at(ledger, fetchers, charged + 46 * MINUTE).refunded_as_lost == 1
    assert ledger.balance("acct") == 1000


def test_a_charge_recorded_without_deadlines_gets_the_defaults(
    ledger: Ledger, fetchers: dict[str, Any]
) -> None:
    ledger.grant(account_id="acct", credits=100, idempotency_key="top", reason="t")
    ledger.charge(
        generation_id="g1", account_id="acct", provider="kling", operation="video", credits=25
    )
    now = now_ms()
    assert sweep_at(ledger, fetchers, now + 9 * MINUTE).looked_at == 0
    assert sweep_at(ledger, fetchers, now + 46 * MINUTE).refunded_as_lost == 1


def test_a_settled_generation_is_never_swept(
    ledger: Ledger, fetchers: dict[str, Any], videos_api: FakeVideosAPI
) -> None:
    charged = _charge(ledger, "g1")
    ledger.settle(
        generation_id="g1",
        outcome=Outcome.SUCCEEDED,
        reason="ok",
        refund=False,
        failure_known_at_ms=1,
    )
    assert sweep_at(ledger, fetchers, charged + 50 * MINUTE).looked_at == 0
    assert videos_api.seen() == []
    assert ledger.balance("acct") == 975
