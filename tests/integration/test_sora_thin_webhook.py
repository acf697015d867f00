"""A thin Sora webhook event (only the video id) is resolved by fetching the video from a real
local HTTP server, then classified and settled in the real ledger. On one backend: the
subject is the fetch and its classification; the ledger's settlement on both backends is
``test_ledger_contract``'s and ``test_refund_through_broker``'s."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from handlers.generation import RefundPolicy, ResultApplied, apply_result
from handlers.thin_events import JobNotFinished
from ledger import Ledger, Outcome, Settlement, audit, now_ms
from ledger.errors import ConfigurationError
from providers.openai_api import (
    JobGone,
    ProviderAuthFailed,
    ProviderUnavailable,
    VideosClient,
    thin_event_job_id,
)
from tests.support.backends import ONE_BACKEND
from tests.support.commands import WorkerProcesses
from tests.support.fake_videos_api import FakeVideosAPI, Reply, video
from tests.support.servers import LOOPBACK, free_port
from tests.support.waiting import wait_until
from workers import client as refundry_client
from workers import runtime
from workers.settings import Settings

KEY = "sk-test-thin-webhook"
TOP_UP = 100
CREDITS = 30
ATTEMPTS = 4


def event(video_id: str, kind: str = "video.completed") -> dict[str, Any]:
    """The webhook event as OpenAI sends it: no status, no error, only the video id."""
    return {
        "id": "evt_0001",
        "object": "event",
        "type": kind,
        "created_at": 1_780_000_100,
        "data": {"id": video_id},
    }


@pytest.fixture
def videos_api() -> Iterator[FakeVideosAPI]:
    api = FakeVideosAPI()
    api.start()
    yield api
    api.close()


@pytest.fixture
def videos(videos_api: FakeVideosAPI) -> Iterator[VideosClient]:
    with VideosClient(
        videos_api.url, KEY, max_attempts=ATTEMPTS, max_wait_s=2.0, backoff_base_s=0.01
    ) as client:
        yield client


def _charged(ledger: Ledger, video_id: str) -> str:
    gen = f"gen-{video_id}"
    ledger.grant(account_id="acct", credits=TOP_UP, idempotency_key=f"top-{gen}", reason="t")
    ledger.charge(
        generation_id=gen,
        account_id="acct",
        provider="openai",
        operation="video",
        credits=CREDITS,
        provider_job_id=video_id,
    )
    return gen


def _apply(ledger: Ledger, videos: VideosClient, payload: Mapping[str, Any]) -> ResultApplied:
    def fetch_job(provider: str, job_id: str) -> Mapping[str, Any]:
        assert provider == "openai"
        return videos.retrieve(job_id)

    return apply_result(
        ledger,
        provider="openai",
        payload=payload,
        generation_id=None,
        operation=None,
        failure_known_at_ms=now_ms(),
        policy=RefundPolicy(),
        fetch_job=fetch_job,
    )


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (event("video_1"), "video_1"),
        (event("video_2", "video.failed"), "video_2"),
        (event("", "video.failed"), None),
        ({**event("video_3"), "data": {"id": 3}}, None),
        ({**event("video_4"), "type": "batch.completed"}, None),
        (video("video_5", "completed"), None),
        (["video.completed"], None),
    ],
)
def test_only_video_events_with_a_video_id_are_thin(payload: object, expected: str | None) -> None:
    assert thin_event_job_id(payload) == expected


@ONE_BACKEND
def test_completed_job_behind_the_event_keeps_the_credits(
    ledger: Ledger, videos_api: FakeVideosAPI, videos: VideosClient
) -> None:
    gen = _charged(ledger, "video_ok")
    videos_api.script("video_ok", Reply(200, video("video_ok", "completed")))
    applied = _apply(ledger, videos, event("video_ok"))
    assert (applied.generation_id, applied.settlement) == (gen, Settlement.KEPT)
    assert applied.classification.outcome is Outcome.SUCCEEDED
    assert ledger.balance("acct") == TOP_UP - CREDITS


@ONE_BACKEND
def test_failed_job_with_a_moderation_code_is_moderated_and_refunded(
    ledger: Ledger, videos_api: FakeVideosAPI, videos: VideosClient
) -> None:
    gen = _charged(ledger, "video_mod")
    error = {"code": "moderation_blocked", "message": "blocked by our moderation system."}
    videos_api.script("video_mod", Reply(200, video("video_mod", "failed", error=error)))
    applied = _apply(ledger, videos, event("video_mod", "video.failed"))
    assert applied.classification.outcome is Outcome.MODERATED
    assert applied.settlement is Settlement.REFUNDED
    assert ledger.balance("acct") == TOP_UP
    found = ledger.generation(gen)
    assert found is not None and found.outcome is Outcome.MODERATED


@pytest.mark.parametrize("status", [404, 410])
@ONE_BACKEND
def test_job_gone_upstream_fails_and_is_refunded_exactly_once(
    ledger: Ledger, videos_api: FakeVideosAPI, videos: VideosClient, status: int
) -> None:
    gen = _charged(ledger, "video_gone")
    videos_api.script("video_gone", Reply(status, {"error": {"message": "gone"}}))
    first = _apply(ledger, videos, event("video_gone", "video.failed"))
    again = _apply(ledger, videos, event("video_gone", "video.failed"))
    assert first.classification.outcome is Outcome.FAILED
    assert first.classification.reason == f"job gone upstream (HTTP {status})"
    assert (first.settlement, again.settlement) == (Settlement.REFUNDED, Settlement.DUPLICATE)
    assert ledger.balance("acct") == TOP_UP
    assert len(ledger.refund_latencies_ms()) == 1
    found = ledger.generation(gen)
    assert found is not None and found.outcome_reason == f"job gone upstream (HTTP {status})"
    assert len(videos_api.seen("video_gone")) == 2  # one request each: a gone job is not retried
    assert audit(ledger.db) == []


@ONE_BACKEND
def test_rate_limited_fetch_waits_for_retry_after_then_classifies_the_200(
    ledger: Ledger, videos_api: FakeVideosAPI, videos: VideosClient
) -> None:
    _charged(ledger, "video_429")
    videos_api.script(
        "video_429",
        Reply(429, {"error": {"code": "rate_limit_exceeded"}}, {"Retry-After": "1"}),
        Reply(200, video("video_429", "failed", error={"code": "internal_error"})),
    )
    applied = _apply(ledger, videos, event("video_429", "video.failed"))
    assert applied.classification.outcome is Outcome.FAILED
    assert applied.settlement is Settlement.REFUNDED
    first, second = videos_api.seen("video_429")
    assert second.at - first.at >= 0.95


def test_poll_after_hint_sets_the_wait_of_a_retried_fetch(
    videos_api: FakeVideosAPI, videos: VideosClient
) -> None:
    videos_api.script(
        "video_hint",
        Reply(503, headers={"openai-poll-after-ms": "300"}),
        Reply(200, video("video_hint", "completed")),
    )
    assert videos.retrieve("video_hint")["status"] == "completed"
    first, second = videos_api.seen("video_hint")
    assert second.at - first.at >= 0.28


@ONE_BACKEND
def test_server_errors_twice_then_200_classifies_the_200(
    ledger: Ledger, videos_api: FakeVideosAPI, videos: VideosClient
) -> None:
    _charged(ledger, "video_5xx")
    videos_api.script(
        "video_5xx", Reply(502), Reply(500), Reply(200, video("video_5xx", "completed"))
    )
    applied = _apply(ledger, videos, event("video_5xx"))
    assert applied.classification.outcome is Outcome.SUCCEEDED
    assert applied.settlement is Settlement.KEPT
    assert len(videos_api.seen("video_5xx")) == 3


@ONE_BACKEND
def test_always_unavailable_raises_a_transient_error_after_the_bounded_attempts(
    ledger: Ledger,
    videos_api: FakeVideosAPI,
    videos: VideosClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gen = _charged(ledger, "video_down")
    videos_api.script("video_down", Reply(503, {"error": {"message": "overloaded"}}))
    with caplog.at_level(logging.WARNING), pytest.raises(ProviderUnavailable) as caught:
        _apply(ledger, videos, event("video_down"))
    assert not caught.value.permanent
    assert caught.value.fields["attempts"] == ATTEMPTS
    assert caught.value.fields["last"] == "HTTP 503"
    assert len(videos_api.seen("video_down")) == ATTEMPTS
    found = ledger.generation(gen)
    assert found is not None and found.outcome is None
    assert ledger.balance("acct") == TOP_UP - CREDITS
    assert "retry in" in caplog.text and KEY not in caplog.text


def test_unreachable_api_is_retried_then_transient() -> None:
    base = f"http://{LOOPBACK}:{free_port()}/v1"  # nothing listens there
    client = VideosClient(base, KEY, max_attempts=3, max_wait_s=0.1, backoff_base_s=0.01)
    with client, pytest.raises(ProviderUnavailable) as caught:
        client.retrieve("video_offline")
    assert caught.value.fields["attempts"] == 3
    assert caught.value.fields["last"] == "ConnectError"
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_fetch_sends_the_bearer_key_which_never_shows_elsewhere(
    videos_api: FakeVideosAPI, videos: VideosClient
) -> None:
    videos_api.script("video_auth", Reply(200, video("video_auth", "queued")))
    videos.retrieve("video_auth")
    (seen,) = videos_api.seen("video_auth")
    assert seen.authorization == f"Bearer {KEY}"
    assert KEY not in repr(videos)
    assert KEY not in repr(Settings.from_env({"OPENAI_API_KEY": KEY}))


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_is_permanent_and_not_retried(
    videos_api: FakeVideosAPI, videos: VideosClient, status: int
) -> None:
    videos_api.script("video_key", Reply(status, {"error": {"code": "invalid_api_key"}}))
    with pytest.raises(ProviderAuthFailed) as caught:
        videos.retrieve("video_key")
    assert caught.value.permanent and KEY not in str(caught.value)
    assert len(videos_api.seen("video_key")) == 1


def test_unknown_video_is_gone(videos_api: FakeVideosAPI, videos: VideosClient) -> None:
    with pytest.raises(JobGone) as caught:
        videos.retrieve("video_never_made")
    assert (caught.value.status, caught.value.job_id) == (404, "video_never_made")


@ONE_BACKEND
def test_event_ahead_of_the_job_is_retried_later_and_settles_nothing(
    ledger: Ledger, videos_api: FakeVideosAPI, videos: VideosClient
) -> None:
    gen = _charged(ledger, "video_lag")
    videos_api.script("video_lag", Reply(200, video("video_lag", "in_progress")))
    with pytest.raises(JobNotFinished) as caught:
        _apply(ledger, videos, event("video_lag"))
    assert not caught.value.permanent
    found = ledger.generation(gen)
    assert found is not None and found.outcome is None


@ONE_BACKEND
def test_runtime_fetcher_uses_the_configured_api(
    ledger: Ledger, videos_api: FakeVideosAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_BASE", videos_api.url)
    runtime.reset()
    try:
        _charged(ledger, "video_rt")
        videos_api.script("video_rt", Reply(200, video("video_rt", "completed")))
        applied = apply_result(
            ledger,
            provider="openai",
            payload=event("video_rt"),
            generation_id=None,
            operation=None,
            failure_known_at_ms=now_ms(),
            policy=RefundPolicy(),
            fetch_job=runtime.fetch_job,
        )
        assert applied.settlement is Settlement.KEPT
        assert videos_api.seen("video_rt")[0].authorization == f"Bearer {KEY}"
    finally:
        runtime.reset()


def test_without_an_api_key_a_thin_event_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "")
    runtime.reset()
    try:
        with pytest.raises(ConfigurationError) as caught:
            runtime.fetch_job("openai", "video_x")
        assert caught.value.permanent
        assert caught.value.fields["variable"] == "OPENAI_API_KEY"
    finally:
        runtime.reset()


@ONE_BACKEND
def test_thin_event_reported_to_the_workers_is_fetched_and_refunded(
    workers: WorkerProcesses, refundry_env: dict[str, str], videos_api: FakeVideosAPI
) -> None:
    error = {"code": "moderation_blocked", "message": "blocked"}
    videos_api.script("video_e2e", Reply(200, video("video_e2e", "failed", error=error)))
    workers.env |= {"OPENAI_API_KEY": KEY, "OPENAI_API_BASE": videos_api.url}
    refundry_client.grant(account_id="acct", credits=TOP_UP, idempotency_key="top", reason="t")
    refundry_client.charge(
        generation_id="g-e2e",
        account_id="acct",
        provider="openai",
        operation="video",
        credits=CREDITS,
        provider_job_id="video_e2e",
    )
    refundry_client.report_result(provider="openai", payload=event("video_e2e", "video.failed"))
    workers.start(processes=1, threads=2)
    ledger = runtime.ledger()

    def settled() -> Outcome | None:
        found = ledger.generation("g-e2e")
        return found.outcome if found is not None else None

    assert wait_until(settled, timeout=60, message="not settled") is Outcome.MODERATED
    assert refundry_client.balance("acct") == TOP_UP
    assert videos_api.seen("video_e2e")[0].authorization == f"Bearer {KEY}"


@ONE_BACKEND
def test_thin_event_without_an_api_key_is_dead_lettered_naming_the_variable(
    workers: WorkerProcesses, refundry_env: dict[str, str]
) -> None:
    workers.env["OPENAI_API_KEY"] = ""
    message_id = refundry_client.report_result(provider="openai", payload=event("video_nokey"))
    workers.start(processes=1, threads=1)
    ledger = runtime.ledger()
    (letter,) = wait_until(ledger.dead.all, timeout=60, message="not dead-lettered")
    assert letter["message_id"] == message_id
    assert letter["reason"].startswith("ConfigurationError")
    assert "OPENAI_API_KEY" in letter["reason"]
