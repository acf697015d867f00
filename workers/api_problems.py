"""The HTTP API's errors as RFC 9457 problem details (https://www.rfc-editor.org/rfc/rfc9457):
``application/problem+json`` bodies with ``type``, ``title``, ``status`` and ``detail``, plus
``field`` (the request field, path parameter or header at fault) and ``error`` (the class of
Refundry's own exception, ``ledger.errors``) when there is one.

One table, :data:`PROBLEMS`, names every problem the API answers: its status, its title, and
the ``type`` URI (``urn:refundry:problem:<name>``) a client matches on. README and the
OpenAPI document list the same table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from ledger.errors import (
    IdempotencyConflict,
    IdempotencyKeyInUse,
    InsufficientCredits,
    InvalidInput,
    LedgerUnavailable,
    NotFound,
    RefundryError,
    Unclassifiable,
    UnknownProvider,
)

__all__ = [
    "PROBLEMS",
    "PROBLEM_TYPE",
    "Answer",
    "answer",
    "from_error",
    "problem",
]

PROBLEM_TYPE: Final = "application/problem+json"

PROBLEMS: Final[dict[str, tuple[int, str]]] = {
    "malformed-body": (400, "The body is not a JSON object within the rules"),
    "invalid-idempotency-key": (400, "The Idempotency-Key header breaks the id rule"),
    "repeated-header": (400, "A header that is sent once was sent more than once"),
    "unauthorized": (401, "A valid API key is required"),
    "not-found": (404, "No such resource"),
    "method-not-allowed": (405, "Method not allowed on this resource"),
    "request-timeout": (408, "The body was not received in time"),
    "idempotency-key-reused": (409, "The Idempotency-Key was used with another request"),
    "idempotency-key-in-use": (409, "A request under this Idempotency-Key is in flight"),
    "conflict": (409, "The id was already used with other inputs"),
    "insufficient-credits": (409, "The balance does not cover the charge"),
    "body-too-large": (413, "The body is over the size limit"),
    "unsupported-media-type": (415, "The body must be application/json"),
    "invalid-input": (422, "A field breaks its rule"),
    "internal": (500, "Refundry failed unexpectedly"),
    "unavailable": (503, "The ledger cannot be reached; retry"),
}
"""Problem name → (HTTP status, title). ``type`` is ``urn:refundry:problem:<name>``."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer of the API: its status, JSON body and extra headers. ``keep`` says
    whether an idempotency key keeps it (the request ran: a success, or a refusal by the
    ledger), or forgets it (nothing ran: refused input, the ledger unavailable)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    keep: bool = True

    @property
    def media_type(self) -> str:
        return PROBLEM_TYPE if self.status >= 400 else "application/json"

    def text(self) -> str:
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":"))


def answer(status: int, body: dict[str, Any]) -> Answer:
    """A successful answer."""
    return Answer(status, body)


def problem(
    name: str,
    detail: str,
    *,
    field_name: str | None = None,
    error: str | None = None,
    headers: dict[str, str] | None = None,
    keep: bool = False,
) -> Answer:
    """The problem ``name`` of :data:`PROBLEMS` with ``detail`` (never a secret: the
    callers pass Refundry's redacted error messages)."""
    status, title = PROBLEMS[name]
    body: dict[str, Any] = {
        "type": f"urn:refundry:problem:{name}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if field_name is not None:
        body["field"] = field_name
    if error is not None:
        body["error"] = error
    return Answer(status, body, headers or {}, keep)


def from_error(exc: RefundryError) -> Answer:
    """The problem for one of Refundry's errors raised while answering a request. Refused
    input and an unavailable ledger ran nothing (not kept under an idempotency key); a
    refusal by the ledger is the request's answer (kept)."""
    name = type(exc).__name__
    field_name = exc.fields.get("field")
    shown = field_name if isinstance(field_name, str) else None
    if shown is None and isinstance(exc, UnknownProvider):
        shown = "provider"
    if isinstance(exc, InvalidInput | Unclassifiable):
        return problem("invalid-input", str(exc), field_name=shown, error=name)
    if isinstance(exc, NotFound):
        return problem("not-found", str(exc), error=name)
    if isinstance(exc, InsufficientCredits):
        return problem("insufficient-credits", str(exc), error=name, keep=True)
    if isinstance(exc, IdempotencyConflict):
        return problem("conflict", str(exc), error=name, keep=True)
    if isinstance(exc, IdempotencyKeyInUse):
        return problem("idempotency-key-in-use", str(exc), error=name, headers=_RETRY)
    if isinstance(exc, LedgerUnavailable):
        return problem("unavailable", "the ledger cannot be reached", error=name, headers=_RETRY)
    return problem("internal", "Refundry could not answer this request", error=name)


_RETRY: Final = {"Retry-After": "1"}
