"""A result settles only the generation whose job it names: a result for job X reported for
generation Y is a permanent dead letter naming both jobs, and nothing is fetched for it. A
generation charged without a job takes the first result's job; from then on the same rule
holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from handlers.generation import RefundPolicy, apply_result
from ledger import Ledger, now_ms
from ledger.errors import ResultForAnotherJob

CREDITS = 30


def _charged(ledger: Ledger, provider: str, job_id: str | None) -> str:
    ledger.grant(account_id="acct", credits=100, idempotency_key="top", reason="t")
    ledger.charge(
        generation_id="gen-1",
        account_id="acct",
        provider=provider,
        operation="video",
        credits=CREDITS,
        provider_job_id=job_id,
    )
    return "gen-1"


def _report(ledger: Ledger, provider: str, payload: Mapping[str, Any], fetched: list[str]) -> Any:
    def fetch_job(provider: str, job_id: str) -> Mapping[str, Any]:
        fetched.append(job_id)
        return {"id": job_id, "object": "video", "status": "failed", "error": {"code": "x"}}

    return apply_result(
        ledger,
        provider=provider,
        payload=payload,
        generation_id="gen-1",
        operation=None,
        failure_known_at_ms=now_ms(),
        policy=RefundPolicy(),
        fetch_job=fetch_job,
    )


def test_a_result_naming_another_job_settles_nothing_and_names_both_jobs(ledger: Ledger) -> None:
    gen = _charged(ledger, "replicate", "j1")
    failed_elsewhere = {"id": "j-other", "status": "failed", "error": "CUDA out of memory"}

    with pytest.raises(ResultForAnotherJob) as caught:
        _report(ledger, "replicate", failed_elsewhere, [])

    assert caught.value.permanent
    assert caught.value.fields == {
        "generation_id": gen,
        "charged_job_id": "j1",
        "reported_job_id": "j-other",
    }
    assert ledger.balance("acct") == 100 - CREDITS
    generation = ledger.generation(gen)
    assert generation is not None and generation.outcome is None


@pytest.mark.parametrize("named", ["..", "video_other", "."])
def test_a_thin_event_naming_another_job_is_refused_before_anything_is_fetched(
    ledger: Ledger, named: str
) -> None:
    _charged(ledger, "openai", "video_1")
    thin = {"id": "evt_1", "object": "event", "type": "video.failed", "data": {"id": named}}
    fetched: list[str] = []

    with pytest.raises(ResultForAnotherJob):
        _report(ledger, "openai", thin, fetched)

    assert fetched == []
    assert ledger.balance("acct") == 100 - CREDITS


def test_a_result_naming_the_charged_job_is_applied(ledger: Ledger) -> None:
    gen = _charged(ledger, "replicate", "j1")
    _report(ledger, "replicate", {"id": "j1", "status": "failed", "error": "boom"}, [])
    assert ledger.balance("acct") == 100
    generation = ledger.generation(gen)
    assert generation is not None and generation.outcome is not None


def test_a_charge_without_a_job_takes_the_first_results_job_and_refuses_any_other(
    ledger: Ledger,
) -> None:
    """Decided: the first result reported for a generation charged without a job id records
    its job on the charge (compare-and-set, in the settlement's transaction). A later result
    naming another job is ``ResultForAnotherJob``, as if the job had been charged; a replay
    of the charge without a job id is still the same charge."""
    gen = _charged(ledger, "replicate", None)
    _report(ledger, "replicate", {"id": "j-first", "status": "failed", "error": "boom"}, [])
    generation = ledger.generation(gen)
    assert generation is not None and generation.provider_job_id == "j-first"
    assert ledger.balance("acct") == 100

    for other in ({"id": "j-somebody-else", "status": "succeeded", "output": ["x"]},):
        with pytest.raises(ResultForAnotherJob) as caught:
            _report(ledger, "replicate", other, [])
        assert caught.value.fields["charged_job_id"] == "j-first"
    assert [r["outcome"] for r in ledger.outcome_reports(gen)] == ["failed"]
    assert (
        ledger.charge(
            generation_id=gen,
            account_id="acct",
            provider="replicate",
            operation="video",
            credits=CREDITS,
        )
        == 100
    )


def test_a_result_naming_a_job_another_generation_holds_settles_nothing(ledger: Ledger) -> None:
    _charged(ledger, "replicate", None)
    ledger.charge(
        generation_id="gen-2",
        account_id="acct",
        provider="replicate",
        operation="video",
        credits=CREDITS,
        provider_job_id="j2",
    )
    with pytest.raises(ResultForAnotherJob) as caught:
        _report(ledger, "replicate", {"id": "j2", "status": "failed", "error": "boom"}, [])
    assert caught.value.fields == {
        "generation_id": "gen-1",
        "reported_job_id": "j2",
        "held_by": "gen-2",
    }
    for gen in ("gen-1", "gen-2"):
        generation = ledger.generation(gen)
        assert generation is not None and generation.outcome is None
    assert ledger.balance("acct") == 100 - 2 * CREDITS
