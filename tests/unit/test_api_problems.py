"""Refundry's errors as the HTTP API's problem details: the status, whether an idempotency
key keeps the answer (the request ran) or forgets it (nothing ran), and the field named."""

from __future__ import annotations

import pytest

from ledger.errors import (
    AccountNotFound,
    IdempotencyConflict,
    IdempotencyKeyInUse,
    InsufficientCredits,
    InvalidAmount,
    InvalidIdentifier,
    LedgerError,
    LedgerUnavailable,
    RefundryError,
    UnknownOperation,
    UnknownProvider,
)
from workers.api_problems import PROBLEM_TYPE, from_error


@pytest.mark.parametrize(
    ("error", "status", "name", "kept", "field"),
    [
        (
            InvalidAmount("credits must be positive", field="credits"),
            422,
            "invalid-input",
            False,
            "credits",
        ),
        (InvalidIdentifier("bad", field="account_id"), 422, "invalid-input", False, "account_id"),
        (
            UnknownOperation(field="operation", operation="poem", valid="video"),
            422,
            "invalid-input",
            False,
            "operation",
        ),
        (UnknownProvider(provider="dalle", valid="fal"), 422, "invalid-input", False, "provider"),
        (AccountNotFound(account_id="a"), 404, "not-found", False, None),
        (
            InsufficientCredits(account_id="a", credits=5, balance=1),
            409,
            "insufficient-credits",
            True,
            None,
        ),
        (IdempotencyConflict(generation_id="g"), 409, "conflict", True, None),
        (IdempotencyKeyInUse(idempotency_key="k"), 409, "idempotency-key-in-use", False, None),
        (LedgerUnavailable(location="x"), 503, "unavailable", False, None),
        (LedgerError("row vanished inside its own transaction"), 500, "internal", False, None),
    ],
)
def test_each_error_is_its_problem(
    error: RefundryError, status: int, name: str, kept: bool, field: str | None
) -> None:
    answer = from_error(error)
    assert (answer.status, answer.keep) == (status, kept)
    assert answer.media_type == PROBLEM_TYPE
    assert answer.body["type"] == f"urn:refundry:problem:{name}"
    assert answer.body["status"] == status
    assert answer.body.get("field") == field
    assert answer.body["error"] == type(error).__name__
    if status in (503,) or name == "idempotency-key-in-use":
        assert answer.headers["Retry-After"] == "1"


def test_a_detail_never_repeats_a_secret() -> None:
    leaked = "sk_live_" + "a" * 24
    answer = from_error(InvalidIdentifier(f"reason quoting {leaked}", field="reason"))
    assert leaked not in answer.text()
