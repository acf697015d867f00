"""Replicate cases beyond the shared fixtures: every lifecycle status and output shape."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.errors import Unclassifiable
from ledger.outcomes import Outcome
from providers.replicate import ADAPTER

URL = "https://replicate.delivery/xezq/case/out.png"


def prediction(status: Any, output: Any = None, error: Any = None) -> dict[str, Any]:
    return {"id": "rpl_case", "status": status, "output": output, "error": error}


CASES: list[tuple[str, dict[str, Any], str | None, Outcome]] = [
    ("starting", prediction("starting"), "image", Outcome.PENDING),
    ("aborted-is-cancelled", prediction("aborted"), "image", Outcome.CANCELLED),
    ("succeeded-empty-list", prediction("succeeded", []), "image", Outcome.EMPTY_SUCCESS),
    ("succeeded-empty-string", prediction("succeeded", ""), "image", Outcome.EMPTY_SUCCESS),
    ("succeeded-empty-object", prediction("succeeded", {}), "image", Outcome.EMPTY_SUCCESS),
    (
        "succeeded-output-absent",
        {"id": "rpl_case", "status": "succeeded"},
        "image",
        Outcome.EMPTY_SUCCESS,
    ),
    ("succeeded-null-then-url", prediction("succeeded", [None, URL]), "image", Outcome.SUCCEEDED),
    ("succeeded-text-not-url", prediction("succeeded", "hello"), "music", Outcome.EMPTY_SUCCESS),
    (
        "succeeded-undefined-url",
        prediction("succeeded", "https://replicate.delivery/x/undefined"),
        "video",
        Outcome.EMPTY_SUCCESS,
    ),
    (
        "succeeded-object-with-url",
        prediction("succeeded", {"audio_out": URL}),
        "music",
        Outcome.SUCCEEDED,
    ),
    (
        "training-weights",
        prediction("succeeded", {"version": "o/m:abc", "weights": URL}),
        "training",
        Outcome.SUCCEEDED,
    ),
    (
        "training-version-only",
        prediction("succeeded", {"version": "o/m:abc", "weights": None}),
        "training",
        Outcome.SUCCEEDED,
    ),
    ("failed-error-null", prediction("failed"), "image", Outcome.FAILED),
    (
        "failed-safety-checker",
        prediction("failed", error="Safety checker triggered"),
        "image",
        Outcome.MODERATED,
    ),
    (
        "api-error-422",
        {"title": "Invalid version", "detail": "bad", "status": 422},
        "image",
        Outcome.FAILED,
    ),
    (
        "api-error-429",
        {"title": "Too many requests", "detail": "slow down", "status": 429},
        "image",
        Outcome.PENDING,
    ),
    (
        "api-error-402",
        {"title": "Payment required", "detail": "no credit", "status": 402},
        "image",
        Outcome.FAILED,
    ),
]


@pytest.mark.parametrize(
    ("payload", "operation", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_case(payload: dict[str, Any], operation: str | None, expected: Outcome) -> None:
    result = ADAPTER.classify(payload, operation)
    assert result.outcome is expected, result.reason


def test_job_id() -> None:
    assert ADAPTER.classify(prediction("processing")).provider_job_id == "rpl_case"


REFUSED: list[tuple[str, Any]] = [
    ("unknown-status", prediction("canceling")),
    ("capitalised-status", prediction("Succeeded", URL)),
    ("missing-status", {"id": "rpl_case", "output": URL}),
    ("empty-detail", {"detail": ""}),
]


@pytest.mark.parametrize("payload", [c[1] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused(payload: Any) -> None:
    with pytest.raises(Unclassifiable) as caught:
        ADAPTER.classify(payload, "image")
    assert caught.value.fields["provider"] == "replicate"
    assert caught.value.fields["field"] == "status"
