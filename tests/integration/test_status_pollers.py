"""Stuck Replicate, Suno-style and Kling generations are polled through each provider's status
API (a real local HTTP server per provider), classified by that provider's adapter and
settled in the real ledger (SQLite and PostgreSQL). Time is injected into the sweep
(``at_ms``); retry waits are measured by the fake server's own clock."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest

from handlers.stuck_sweep import SYSTEM_FAILURE
from ledger import Ledger, Outcome, audit
from ledger.errors import ConfigurationError
from providers.pollers import Poller
from providers.registry import classify
from tests.support.backends import ONE_BACKEND
from tests.support.fake_status_apis import kling_api, replicate_api, suno_api
from tests.support.scripted_http import Reply, ScriptedHTTPServer
from tests.support.status_cases import (
    CASES,
    JOB,
    KLING_AK,
    KLING_SK,
    MINUTE,
    REPLICATE_TOKEN,
    SUNO_KEY,
    Case,
    charge_and_poll,
    charge_stuck,
    sweep_at,
    the_generation,
)
from workers import runtime
from workers.settings import Settings


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


@pytest.fixture
def api(case: Case) -> Iterator[ScriptedHTTPServer]:
    with case.server() as server:
        yield server


@pytest.fixture
def poller(case: Case, api: ScriptedHTTPServer) -> Iterator[Poller]:
    with case.poller(api.url) as built:
        yield built


def test_terminal_failure_is_refunded_through_the_poll(
    ledger: Ledger, case: Case, api: ScriptedHTTPServer, poller: Poller
) -> None:
    api.script(case.key(JOB), Reply(200, case.failed(JOB)))
    assert charge_and_poll(ledger, case, poller).settled_by_poll == 1
    assert the_generation(ledger).outcome is Outcome.FAILED
    assert ledger.balance("acct") == 1000
    assert audit(ledger.db) == []


def test_success_keeps_the_credits(
    ledger: Ledger, case: Case, api: ScriptedHTTPServer, poller: Poller
) -> None:
    api.script(case.key(JOB), Reply(200, case.succeeded(JOB)))
    assert charge_and_poll(ledger, case, poller).settled_by_poll == 1
    assert the_generation(ledger).outcome is Outcome.SUCCEEDED
    assert ledger.balance("acct") == 975


def test_pending_stays_charged_until_the_hard_deadline(
    ledger: Ledger, case: Case, api: ScriptedHTTPServer, poller: Poller
) -> None:
    api.script(case.key(JOB), Reply(200, case.pending(JOB)))
    charged = charge_stuck(ledger, case.provider, case.operation)
    first = sweep_at(ledger, {case.provider: poller}, charged + 11 * MINUTE)
    assert (first.polled, first.still_pending, ledger.balance("acct")) == (1, 1, 975)
    polls_before = len(api.seen())
    lost = sweep_at(ledger, {case.provider: poller}, charged + 45 * MINUTE)
    assert (lost.polled, lost.refunded_as_lost) == (0, 1), "past the hard deadline: no poll"
    assert len(api.seen()) == polls_before
    assert ledger.balance("acct") == 1000


@ONE_BACKEND
def test_a_job_unknown_upstream_is_refunded_as_lost(
    ledger: Ledger, case: Case, api: ScriptedHTTPServer, poller: Poller
) -> None:
    charged = charge_stuck(ledger, case.provider, case.operation)
    result = sweep_at(ledger, {case.provider: poller}, charged + 11 * MINUTE)  # unscripted: 404
    expected = "HTTP 404"
    if case.provider == "suno":  # its 404 means "invalid method or path", not "no such task"
        assert (result.refunded_as_lost, result.still_pending) == (0, 1)
        result = sweep_at(ledger, {case.provider: poller}, charged + 45 * MINUTE)
        expected = "hard deadline passed"
    assert result.refunded_as_lost == 1
    reason = the_generation(ledger).outcome_reason
    assert reason is not None and reason.startswith(SYSTEM_FAILURE) and expected in reason
    assert ledger.balance("acct") == 1000
    if case.provider == "kling":  # looked for under every endpoint a video may come from
        assert [s.path for s in api.seen()] == [
            f"/v1/videos/text2video/{JOB}",
            f"/v1/videos/image2video/{JOB}",
        ]


@ONE_BACKEND
def test_rate_limited_poll_honours_retry_after_then_applies_the_answer(
    ledger: Ledger, case: Case, api: ScriptedHTTPServer, poller: Poller
) -> None:
    api.script(case.key(JOB), case.throttled, Reply(200, case.failed(JOB)))
    assert charge_and_poll(ledger, case, poller).settled_by_poll == 1
    first, second = api.seen(case.key(JOB))
    assert second.at - first.at >= 0.9
    assert ledger.balance("acct") == 1000


@ONE_BACKEND
def test_server_errors_then_the_terminal_answer(
    ledger: Ledger, case: Case, api: ScriptedHTTPServer, poller: Poller
) -> None:
    api.script(case.key(JOB), Reply(500, {}), Reply(503), Reply(200, case.succeeded(JOB)))
    assert charge_and_poll(ledger, case, poller).settled_by_poll == 1
    assert len(api.seen(case.key(JOB))) == 3
    assert the_generation(ledger).outcome is Outcome.SUCCEEDED


def test_the_classifier_reads_what_the_poller_returns(
    case: Case, api: ScriptedHTTPServer, poller: Poller
) -> None:
    for job, body, outcome in [
        ("p", case.pending, Outcome.PENDING),
        ("f", case.failed, Outcome.FAILED),
        ("s", case.succeeded, Outcome.SUCCEEDED),
    ]:
        api.script(case.key(job), Reply(200, body(job)))
        payload = poller.poll(case.provider, job, case.operation)
        assert classify(case.provider, payload, case.operation).outcome is outcome
        assert poller(case.provider, job) == payload  # the plain JobFetcher call


def test_credentials_are_sent_in_the_authorization_header_only(
    case: Case, api: ScriptedHTTPServer, poller: Poller
) -> None:
    api.script(case.key(JOB), Reply(503), Reply(200, case.pending(JOB)))
    poller(case.provider, JOB)
    for seen in api.seen():
        authorization = seen.authorization or ""
        if case.provider == "replicate":
            assert authorization == f"Bearer {REPLICATE_TOKEN}"
        elif case.provider == "suno":
            assert authorization == f"Bearer {SUNO_KEY}"
            assert seen.query == {"taskId": JOB}
        else:
            scheme, token = authorization.split(" ")
            claims = jwt.decode(token, KLING_SK, algorithms=["HS256"], issuer=KLING_AK)
            assert scheme == "Bearer" and jwt.get_unverified_header(token)["typ"] == "JWT"
            assert abs(claims["exp"] - (seen.wall + 1800)) <= 2
            assert abs(claims["nbf"] - (seen.wall - 5)) <= 2
    for secret in (REPLICATE_TOKEN, SUNO_KEY, KLING_AK, KLING_SK):
        assert secret not in repr(poller)


def test_a_poller_refuses_another_providers_job(poller: Poller) -> None:
    with pytest.raises(ConfigurationError):
        poller("openai", JOB)


@ONE_BACKEND
def test_runtime_polls_every_provider_whose_credentials_are_set(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    with replicate_api() as replicate, suno_api() as suno, kling_api() as kling:
        env = {
            "REPLICATE_API_TOKEN": REPLICATE_TOKEN,
            "REPLICATE_API_BASE": replicate.url,
            "SUNO_API_KEY": SUNO_KEY,
            "SUNO_API_BASE": suno.url,
            "KLING_ACCESS_KEY": KLING_AK,
            "KLING_SECRET_KEY": KLING_SK,
            "KLING_API_BASE": kling.url,
            "OPENAI_API_KEY": "",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runtime.reset()
        try:
            fetchers = runtime.job_fetchers()
            assert sorted(fetchers) == ["kling", "replicate", "suno"]
            assert runtime.job_fetchers()["kling"] is fetchers["kling"]  # built once
            kling.script(f"text2video/{JOB}", Reply(200, CASES["kling"].failed(JOB)))
            assert charge_and_poll(ledger, CASES["kling"], fetchers["kling"]).settled_by_poll == 1
            (seen,) = kling.seen()
            token = (seen.authorization or "").removeprefix("Bearer ")
            assert jwt.decode(token, KLING_SK, algorithms=["HS256"])["iss"] == KLING_AK
        finally:
            runtime.reset()
    assert ledger.balance("acct") == 1000


def test_settings_hide_provider_secrets_and_refuse_half_a_kling_key() -> None:
    env = {"REPLICATE_API_TOKEN": REPLICATE_TOKEN, "SUNO_API_KEY": SUNO_KEY}
    s = Settings.from_env(env | {"KLING_ACCESS_KEY": KLING_AK, "KLING_SECRET_KEY": KLING_SK})
    assert s.kling_api_base == "https://api-singapore.klingai.com"
    for secret in (REPLICATE_TOKEN, SUNO_KEY, KLING_AK, KLING_SK):
        assert secret not in repr(s)
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"KLING_ACCESS_KEY": KLING_AK})
    assert caught.value.fields["variable"] == "KLING_SECRET_KEY"
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"SUNO_API_BASE": "ftp://example"})
    assert caught.value.fields["variable"] == "SUNO_API_BASE"
