"""What the status-poller tests share: one ``Case`` per provider whose status API Refundry
polls (its fake server, its poller, its bodies for each outcome), and the ledger steps of a
stuck generation (charge it, sweep at a given time, read it back)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from handlers.stuck_sweep import StuckSweepResult
from handlers.thin_events import JobFetcher
from ledger import Generation, Ledger
from providers.kling import KlingPoller
from providers.pollers import HTTPOptions, Poller
from providers.replicate import ReplicatePoller
from providers.suno import SunoPoller
from tests.support import stuck
from tests.support.fake_status_apis import (
    kling_api,
    kling_task,
    kling_videos,
    replicate_api,
    replicate_prediction,
    suno_api,
    suno_record,
    suno_tracks,
)
from tests.support.scripted_http import Reply, ScriptedHTTPServer
from tests.support.stuck import MINUTE, sweep_at

__all__ = [
    "CASES",
    "JOB",
    "KLING_AK",
    "KLING_SK",
    "MINUTE",
    "OPTIONS",
    "REPLICATE_TOKEN",
    "SUNO_KEY",
    "Case",
    "charge_and_poll",
    "charge_stuck",
    "sweep_at",
    "the_generation",
]

OPTIONS: HTTPOptions = {"max_attempts": 3, "max_wait_s": 1.5, "backoff_base_s": 0.01}
REPLICATE_TOKEN = "r8_test_token_0123456789"
SUNO_KEY = "suno-test-key-0123456789"
KLING_AK = "kling-access-key-test"
KLING_SK = "kling-secret-key-test-0123456789abcdef"
JOB = "job-1"

Body = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    provider: str
    operation: str
    server: Callable[[], ScriptedHTTPServer]
    poller: Callable[[str], Poller]
    key: Callable[[str], str]
    pending: Body
    failed: Body
    succeeded: Body
    throttled: Reply
    """A 429 asking for one second."""


CASES = {
    "replicate": Case(
        "replicate",
        "video",
        replicate_api,
        lambda url: ReplicatePoller(REPLICATE_TOKEN, url, **OPTIONS),
        lambda job: job,
        lambda job: replicate_prediction(job, "processing"),
        lambda job: replicate_prediction(job, "failed", error="CUDA out of memory"),
        lambda job: replicate_prediction(job, "succeeded", output=["https://cdn.example/o.mp4"]),
        Reply(429, {"detail": "Request was throttled."}, {"Retry-After": "1"}),
    ),
    "suno": Case(
        "suno",
        "music",
        suno_api,
        lambda url: SunoPoller(SUNO_KEY, url, **OPTIONS),
        lambda job: job,
        lambda job: suno_record(job, "PENDING"),
        lambda job: suno_record(
            job, "GENERATE_AUDIO_FAILED", errorCode=500, errorMessage="Audio generation failed"
        ),
        lambda job: suno_record(job, "SUCCESS", response=suno_tracks(job)),
        Reply(429, {"code": 430, "msg": "call frequency too high"}, {"Retry-After": "1"}),
    ),
    "kling": Case(
        "kling",
        "video",
        kling_api,
        lambda url: KlingPoller(KLING_AK, KLING_SK, url, **OPTIONS),
        lambda job: f"text2video/{job}",
        lambda job: kling_task(job, "processing"),
        lambda job: kling_task(job, "failed", msg="Image pixel is invalid"),
        lambda job: kling_task(job, "succeed", result=kling_videos()),
        Reply(429, {"code": 1302, "message": "request too fast"}, {"Retry-After": "1"}),
    ),
}


def charge_stuck(ledger: Ledger, provider: str, operation: str, job: str = JOB) -> int:
    return stuck.charge_stuck(ledger, provider=provider, operation=operation, job=job)


def charge_and_poll(ledger: Ledger, case: Case, fetch: JobFetcher) -> StuckSweepResult:
    charged = charge_stuck(ledger, case.provider, case.operation)
    return sweep_at(ledger, {case.provider: fetch}, charged + 11 * MINUTE)


def the_generation(ledger: Ledger) -> Generation:
    gen = ledger.generation("g1")
    assert gen is not None
    return gen
