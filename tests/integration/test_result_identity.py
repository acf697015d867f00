"""A result settles only the generation whose job it names: a result for job X reported for
generation Y is a permanent dead letter naming both jobs, and nothing is fetched for it. A
generation charged without a job takes the first result's job; from then on the same rule
holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from handlers.generation import RefundPolicy, apply_result
from ledger import Ledger, Outcome, now_ms
from ledger.errors import InvalidIdentifier, ResultForAnotherJob

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


def _charge_another(ledger: Ledger, generation_id: str, job_id: str) -> None:
    ledger.charge(
        generation_id=generation_id,
        account_id="acct",
        provider="replicate",
        operation="video",
        credits=CREDITS,
        provider_job_id=job_id,
    )


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
    _charge_another(ledger, "gen-2", "j2")
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


HELD = "heldjob069e44aaaaaaaaaaaaaaaa"
LOOKALIKES = {
    "zero-width": HELD + "\u200b",
    "cyrillic": HELD.replace("a", "\u0430"),
    "upper-case": HELD.upper(),
}


def _held_by_another(ledger: Ledger) -> None:
    _charged(ledger, "replicate", None)
    _charge_another(ledger, "gen-holder", HELD)


@pytest.mark.parametrize("variant", sorted(LOOKALIKES))
def test_kind_lookalike_job_id_of_a_held_job_is_never_adopted(ledger: Ledger, variant: str) -> None:
    """A result naming a look-alike (zero-width, Cyrillic, case) of a job another generation
    holds is refused; the generation charged without a job takes nothing, refunds nothing."""
    _held_by_another(ledger)
    failed = {"id": LOOKALIKES[variant], "status": "failed", "error": "boom", "output": None}

    with pytest.raises((ResultForAnotherJob, InvalidIdentifier)) as caught:
        _report(ledger, "replicate", failed, [])

    assert caught.value.permanent
    generation = ledger.generation("gen-1")
    assert generation is not None
    assert generation.provider_job_id is None and generation.outcome is None
    assert ledger.balance("acct") == 100 - 2 * CREDITS


def test_kind_lookalike_job_id_the_ledger_refuses_a_case_variant_of_a_held_job(
    ledger: Ledger,
) -> None:
    """Whatever the provider's id shape, the compare-and-set never records a job that differs
    only in case from one another generation holds (and never folds the id it stores)."""
    _held_by_another(ledger)
    with pytest.raises(ResultForAnotherJob) as caught:
        ledger.settle(
            generation_id="gen-1",
            outcome=Outcome.FAILED,
            reason="boom",
            refund=True,
            failure_known_at_ms=now_ms(),
            provider_job_id=HELD.upper(),
        )
    assert caught.value.fields["held_by"] == "gen-holder"
    generation = ledger.generation("gen-1")
    assert generation is not None and generation.provider_job_id is None


@pytest.mark.parametrize("padded", [" j1", "j1 ", "j1\n", "\tj1"])
@pytest.mark.parametrize("charged_job", ["j1", None])
def test_kind_padded_job_id_is_never_trimmed(
    ledger: Ledger, padded: str, charged_job: str | None
) -> None:
    """A result's job id is held to the charge's identifier rule: padding is refused, never
    trimmed into the charged job, and nothing is settled."""
    _charged(ledger, "replicate", charged_job)
    failed = {"id": padded, "status": "failed", "error": "boom", "output": None}

    with pytest.raises((ResultForAnotherJob, InvalidIdentifier)):
        _report(ledger, "replicate", failed, [])

    generation = ledger.generation("gen-1")
    assert generation is not None and generation.outcome is None
    assert generation.provider_job_id == charged_job
    assert ledger.balance("acct") == 100 - CREDITS


def test_kind_padded_job_id_finds_no_generation_without_a_generation_id(ledger: Ledger) -> None:
    _charged(ledger, "replicate", "djob1")
    with pytest.raises(InvalidIdentifier):
        apply_result(
            ledger,
            provider="replicate",
            payload={"id": " djob1", "status": "failed", "error": "boom", "output": None},
            generation_id=None,
            operation=None,
            failure_known_at_ms=now_ms(),
            policy=RefundPolicy(),
        )
    assert ledger.balance("acct") == 100 - CREDITS
