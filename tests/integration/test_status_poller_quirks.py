"""Where each provider's status API differs: Replicate trainings, Suno's record-info
endpoints and envelope codes, Kling's per-operation query paths and account errors. Real
local HTTP servers and the real ledger, on one backend: the subject is the provider, not
the ledger (``tests/support/status_cases.py`` holds what every poller test shares)."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import Ledger, Outcome
from ledger.errors import Unclassifiable
from providers.kling import KlingPoller
from providers.pollers import NoStatusQuery
from providers.registry import classify
from providers.replicate import ReplicatePoller
from providers.status_http import ProviderAuthFailed, ProviderRequestRejected
from providers.suno import SunoPoller
from tests.support.backends import ONE_BACKEND
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
from tests.support.scripted_http import Reply
from tests.support.status_cases import (
    CASES,
    JOB,
    KLING_AK,
    KLING_SK,
    MINUTE,
    OPTIONS,
    REPLICATE_TOKEN,
    SUNO_KEY,
    charge_and_poll,
    charge_stuck,
    sweep_at,
    the_generation,
)


def test_replicate_trainings_are_polled_at_their_endpoint() -> None:
    with replicate_api() as api, ReplicatePoller(REPLICATE_TOKEN, api.url, **OPTIONS) as poller:
        api.script(JOB, Reply(200, replicate_prediction(JOB, "failed", error="boom")))
        payload = poller.poll("replicate", JOB, "training")
        assert classify("replicate", payload, "training").outcome is Outcome.FAILED
        assert [s.path for s in api.seen()] == [f"/v1/trainings/{JOB}"]


LYRICS = [{"text": "[Verse] city lights", "title": "Night", "status": "complete"}]
WAV_RECORD = {
    "code": 200,
    "msg": "success",
    "data": {
        "taskId": JOB,
        "musicId": "8551-662c",
        "response": {"audioWavUrl": "https://cdn.example/t.wav"},
        "successFlag": "SUCCESS",
        "errorCode": None,
        "errorMessage": None,
    },
}


@pytest.mark.parametrize(
    ("operation", "path", "body"),
    [
        ("music", "generate", suno_record(JOB, "SUCCESS", response=suno_tracks(JOB))),
        ("extend", "generate", suno_record(JOB, "SUCCESS", response=suno_tracks(JOB))),
        ("lyrics", "lyrics", suno_record(JOB, "SUCCESS", response={"data": LYRICS})),
        ("wav_export", "wav", WAV_RECORD),
    ],
)
def test_suno_operation_picks_its_record_info_endpoint(
    operation: str, path: str, body: dict[str, Any]
) -> None:
    with suno_api() as api, SunoPoller(SUNO_KEY, api.url, **OPTIONS) as poller:
        api.script(JOB, Reply(200, body))
        payload = poller.poll("suno", JOB, operation)
        assert classify("suno", payload, operation).outcome is Outcome.SUCCEEDED
        assert [s.path for s in api.seen()] == [f"/api/v1/{path}/record-info"]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(200, {"code": 401, "msg": "Unauthorized"}), ProviderAuthFailed),
        (Reply(200, {"code": 404, "msg": "invalid method or path"}), ProviderRequestRejected),
        (Reply(404, {"code": 404, "msg": "invalid method or path"}), ProviderRequestRejected),
        (Reply(200, {"code": 429, "msg": "insufficient credits"}), ProviderRequestRejected),
        (Reply(200, {"code": 200, "msg": "success", "data": None}), Unclassifiable),
    ],
)
@ONE_BACKEND
def test_suno_envelope_errors_are_never_classified_nor_a_gone_job(
    ledger: Ledger, reply: Reply, error: type[Exception]
) -> None:
    with suno_api() as api, SunoPoller(SUNO_KEY, api.url, **OPTIONS) as poller:
        api.script(JOB, reply)
        with pytest.raises(error):
            poller("suno", JOB)
        assert charge_and_poll(ledger, CASES["suno"], poller).still_pending == 1
        assert len(api.seen()) == 2  # one request each: not retried
    assert the_generation(ledger).outcome is None and ledger.balance("acct") == 975


@ONE_BACKEND
def test_suno_busy_codes_inside_a_200_are_retried(ledger: Ledger) -> None:
    with suno_api() as api, SunoPoller(SUNO_KEY, api.url, **OPTIONS) as poller:
        busy = Reply(200, {"code": 455, "msg": "maintenance"}, {"Retry-After": "0.3"})
        api.script(JOB, busy, Reply(200, CASES["suno"].failed(JOB)))
        assert charge_and_poll(ledger, CASES["suno"], poller).settled_by_poll == 1
        first, second = api.seen()
        assert second.at - first.at >= 0.28
    assert ledger.balance("acct") == 1000


@ONE_BACKEND
def test_suno_stems_are_not_polled_and_refunded_at_the_hard_deadline(ledger: Ledger) -> None:
    with suno_api() as api, SunoPoller(SUNO_KEY, api.url, **OPTIONS) as poller:
        with pytest.raises(NoStatusQuery):
            poller.poll("suno", JOB, "stems")
        charged = charge_stuck(ledger, "suno", "stems")
        assert sweep_at(ledger, {"suno": poller}, charged + 11 * MINUTE).still_pending == 1
        assert sweep_at(ledger, {"suno": poller}, charged + 45 * MINUTE).refunded_as_lost == 1
        assert api.seen() == []
    assert ledger.balance("acct") == 1000


@pytest.mark.parametrize("not_there", [404, 400])
@ONE_BACKEND
def test_kling_video_made_from_an_image_is_found_under_image2video(
    ledger: Ledger, not_there: int
) -> None:
    with kling_api() as api, KlingPoller(KLING_AK, KLING_SK, api.url, **OPTIONS) as poller:
        api.script(f"text2video/{JOB}", Reply(not_there, {"code": 1203, "message": "no such"}))
        api.script(
            f"image2video/{JOB}", Reply(200, kling_task(JOB, "succeed", result=kling_videos()))
        )
        assert charge_and_poll(ledger, CASES["kling"], poller).settled_by_poll == 1
        assert [s.key for s in api.seen()] == [f"text2video/{JOB}", f"image2video/{JOB}"]
    assert the_generation(ledger).outcome is Outcome.SUCCEEDED


def test_kling_images_are_polled_at_images_generations() -> None:
    images = {"images": [{"index": 0, "url": "https://cdn.example/i.png"}]}
    with kling_api() as api, KlingPoller(KLING_AK, KLING_SK, api.url, **OPTIONS) as poller:
        api.script(f"generations/{JOB}", Reply(200, kling_task(JOB, "succeed", result=images)))
        payload = poller.poll("kling", JOB, "image")
        assert classify("kling", payload, "image").outcome is Outcome.SUCCEEDED
        assert [s.path for s in api.seen()] == [f"/v1/images/generations/{JOB}"]
        with pytest.raises(NoStatusQuery):
            poller.poll("kling", JOB, "lip_sync")


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(429, {"code": 1102, "message": "resource pack depleted"}), ProviderRequestRejected),
        (Reply(429, {"code": 1304, "message": "IP whitelist"}), ProviderRequestRejected),
        (Reply(401, {"code": 1004, "message": "token expired"}), ProviderAuthFailed),
        (Reply(200, {"code": 1003, "message": "token not yet valid"}), ProviderAuthFailed),
        (Reply(400, {"code": 1201, "message": "invalid parameters"}), ProviderRequestRejected),
        (Reply(200, {"code": 0, "message": "SUCCEED", "data": None}), Unclassifiable),
    ],
)
def test_kling_account_and_request_errors_are_not_retried_nor_classified(
    reply: Reply, error: type[Exception]
) -> None:
    with kling_api() as api, KlingPoller(KLING_AK, KLING_SK, api.url, **OPTIONS) as poller:
        api.script(f"text2video/{JOB}", reply)
        with pytest.raises(error):
            poller("kling", JOB)
        assert len(api.seen()) == 1
