"""The dramatiq actors: each decodes its message and calls one handler, nothing more."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq

from handlers.generation import apply_result
from ledger import now_ms
from ledger.errors import (
    AmountMismatch,
    ConfigurationError,
    IdempotencyConflict,
    InsufficientCredits,
    Unclassifiable,
)
from providers.openai_api import JobGone, ProviderAuthFailed, ProviderRequestRejected
from workers import runtime
from workers.broker import build_broker
from workers.dead_letters import dead_letter_on_final_failure

__all__ = ["RESULTS_QUEUE", "broker", "process_result"]

log = logging.getLogger(__name__)

RESULTS_QUEUE = "results"
#: Errors no retry can fix: dead-lettered on the first attempt.
PERMANENT = (
    Unclassifiable,
    AmountMismatch,
    IdempotencyConflict,
    InsufficientCredits,
    ConfigurationError,
    ProviderAuthFailed,
    ProviderRequestRejected,
    JobGone,
)

_settings = runtime.settings()
broker = build_broker(_settings)


@dramatiq.actor(
    queue_name=RESULTS_QUEUE,
    max_retries=_settings.max_retries,
    min_backoff=_settings.min_backoff_ms,
    max_backoff=_settings.max_backoff_ms,
    throws=PERMANENT,
)
def process_result(
    provider: str,
    payload: dict[str, Any],
    generation_id: str | None = None,
    operation: str | None = None,
    reported_at_ms: int | None = None,
) -> None:
    """A provider result: classify it, refund the generation if its outcome says so."""
    current = dramatiq.middleware.CurrentMessage.get_current_message()
    message_id = current.message_id if current else None

    def run() -> None:
        applied = apply_result(
            runtime.ledger(),
            provider=provider,
            payload=payload,
            generation_id=generation_id,
            operation=operation,
            failure_known_at_ms=reported_at_ms or now_ms(),
            policy=runtime.policy(),
            message_id=message_id,
            fetch_job=runtime.fetch_job,
        )
        log.info(
            "generation %s: %s → %s",
            applied.generation_id,
            applied.classification.outcome.value,
            applied.settlement.value,
        )

    dead_letter_on_final_failure(run, max_retries=_settings.max_retries)
