"""What pages an on-call engineer: one error-tracking event per decision that needs a human.

Every such decision calls :func:`alert` once, where it is made; the event goes to Sentry
when this process has set it up (``workers.sentry_setup``, ``SENTRY_DSN``) and nowhere
otherwise (sentry-sdk's API does nothing before ``sentry_sdk.init``). The event is grouped
by a stable fingerprint, ``[kind, provider, reason]``, never by its message, so that one
cause is one issue however many generations or purchases it hits; the ids of what it is
about travel in the event's ``refundry`` context, not in the fingerprint.

| kind | raised when |
| --- | --- |
| ``dead-letter`` | an event is dead-lettered (``workers.dead_letters``) |
| ``sla-breach`` | a refund was applied later than the SLA after its failure was known |
| ``sla-overdue`` | an event is still unapplied at the SLA's warning age |
| ``classification-conflict`` | a later terminal outcome contradicts the applied one |
| ``reconciliation`` | reconciliation decided something about a purchase |
| ``refund-failed`` | a refund at the payment provider failed or was refused |

The message and every value are scrubbed before they leave the process (the
``before_send`` of ``workers.sentry_setup``, ``ledger.redaction``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

import sentry_sdk

__all__ = ["KINDS", "alert"]

Level = Literal["fatal", "error", "warning", "info"]

KINDS: Final = frozenset(
    {
        "dead-letter",
        "sla-breach",
        "sla-overdue",
        "classification-conflict",
        "reconciliation",
        "refund-failed",
    }
)


def alert(
    kind: str,
    message: str,
    *,
    provider: str,
    reason: str,
    queue: str | None = None,
    level: Level = "error",
    about: Mapping[str, str | None] | None = None,
) -> None:
    """Raise one alert: a Sentry event of ``level`` with ``message``, the fingerprint
    ``[kind, provider, reason]`` and the tags ``alert`` (``kind``), ``provider``, ``reason``
    and ``queue`` (when given). ``reason`` is a stable word (an error class name, a Stripe
    error code, a reconciliation action), never an id. ``about`` names what the alert is
    about (``generation_id``, ``purchase``, ``inbox_id``…). Never raises: a reporting
    failure must not change what the caller decided (sentry-sdk swallows its own errors)."""
    if kind not in KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")  # a typo would split one issue in two
    with sentry_sdk.new_scope() as scope:
        scope.fingerprint = [kind, provider, reason]
        scope.set_tag("alert", kind)
        scope.set_tag("provider", provider)
        scope.set_tag("reason", reason)
        if queue is not None:
            scope.set_tag("queue", queue)
        ids = {name: value for name, value in (about or {}).items() if value is not None}
        if ids:
            scope.set_context("refundry", ids)
        sentry_sdk.capture_message(message, level=level)
