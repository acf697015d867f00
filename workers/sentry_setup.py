"""Sentry in every Refundry process (worker, scheduler, web): set up, scrubbed, and the
scheduler's sweeps as Sentry Crons monitors.

``SENTRY_DSN`` unset → nothing is set up and nothing is sent: sentry-sdk's API is a no-op
until ``sentry_sdk.init`` (``handlers.alerts`` relies on it). Set → :func:`init_sentry`
runs before the process builds its broker, because sentry-sdk's ``DramatiqIntegration``
adds its middleware by patching ``Broker.__init__`` ("call ``sentry_sdk.init`` before
initializing your broker", https://docs.sentry.io/platforms/python/integrations/dramatiq/):
an actor's unhandled error is then reported with its message id, and every alert
(``handlers.alerts``) carries its fingerprint and tags. ``SENTRY_ENVIRONMENT`` and
``SENTRY_RELEASE`` are read by sentry-sdk itself.

Nothing leaves the process unscrubbed: ``before_send`` and ``before_breadcrumb`` pass the
whole event (message, exception values, stack frames' local variables, request headers and
body, breadcrumbs, tags, contexts) through ``ledger.redaction``, the redaction the
dead-letter queue uses: API keys, webhook secrets, signatures and e-mail addresses are
masked. ``send_default_pii`` stays off (no client IP, cookies or user). The dramatiq
integration's report of an attempt that failed with one of Refundry's own errors is dropped:
that error is retried, then dead-lettered and alerted once, tagged; unexpected exceptions
are sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import sentry_sdk
from sentry_sdk.integrations.dramatiq import DramatiqIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

from ledger.errors import RefundryError
from ledger.redaction import redact
from workers.settings import Settings

if TYPE_CHECKING:
    from sentry_sdk._types import MonitorConfig

__all__ = [
    "MONITOR_SLUGS",
    "init_sentry",
    "monitor_config",
    "monitored",
    "scrub_breadcrumb",
    "scrub_event",
]

MONITOR_SLUGS: Final = {
    "run_inbox_sweep": "refundry-inbox-sweep",
    "run_stuck_sweep": "refundry-stuck-sweep",
    "run_sla_check": "refundry-sla-check",
    "run_reconciliation": "refundry-reconciliation",
    "run_expiry_sweep": "refundry-expiry-sweep",
}
"""The Sentry Crons monitor of each periodic sweep of the scheduler (``workers.scheduler``)."""


def init_sentry(settings: Settings, *, process: str) -> bool:
    """Set Sentry up for this process (``process``: ``worker``, ``scheduler`` or ``web``,
    the ``process`` tag of its events) when ``SENTRY_DSN`` is set; True when it is on.
    Once per process: a second call (the web process importing the actors) changes nothing.
    """
    if not settings.sentry_dsn:
        return False
    if sentry_sdk.get_client().is_active():
        return True
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        integrations=[
            DramatiqIntegration(),
            # log lines are breadcrumbs; the events are the alerts (handlers.alerts, grouped
            # by fingerprint) and unhandled errors, not a second copy of each ERROR line
            LoggingIntegration(level=logging.INFO, event_level=logging.CRITICAL),
        ],
        before_send=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        send_default_pii=False,
    )
    sentry_sdk.set_tag("process", process)
    return True


def scrub_event(event: Any, hint: Any) -> Any:
    """sentry-sdk's ``before_send``: the event with every secret and e-mail address masked
    (``ledger.redaction.redact``, which copies it), or None (not sent) for the dramatiq
    integration's report of an attempt that failed with one of Refundry's own errors."""
    if _handled_by_refundry(event, hint):
        return None
    return redact(event)


def _handled_by_refundry(event: Any, hint: Any) -> bool:
    """The dramatiq integration reports every failed attempt of an actor. An error from
    Refundry's own tree (``ledger.errors.RefundryError``) is retried, then dead-lettered with
    one tagged alert (``workers.dead_letters``): its per-attempt reports would be untagged
    duplicates. Any other exception is unexpected and is sent."""
    exc_info = (hint or {}).get("exc_info")
    if not exc_info or not isinstance(exc_info[1], RefundryError):
        return False
    values = (event.get("exception") or {}).get("values") or []
    return any((v.get("mechanism") or {}).get("type") == "dramatiq" for v in values)


def scrub_breadcrumb(crumb: Any, hint: Any) -> Any:
    """sentry-sdk's ``before_breadcrumb``: a log line or HTTP call, scrubbed the same way."""
    return redact(crumb)


def monitor_config(every_s: int) -> MonitorConfig:
    """A Crons monitor's configuration for a sweep run every ``every_s`` seconds: an interval
    schedule in minutes (Sentry's smallest unit; at least one), a check-in margin of one
    minute, and a maximum runtime after which Sentry counts a run as timed out
    (https://develop.sentry.dev/sdk/telemetry/check-ins/). Sent with each check-in, so the
    monitor is created or updated by the scheduler itself (upsert)."""
    minutes = max(1, -(-every_s // 60))
    return {
        "schedule": {"type": "interval", "value": minutes, "unit": "minute"},
        "checkin_margin": 1,
        "max_runtime": max(5, 2 * minutes),
        "failure_issue_threshold": 2,
        "recovery_threshold": 1,
    }


def monitored(job: Callable[[], object], every_s: int) -> Callable[[], object]:
    """``job`` (a sweep of :data:`MONITOR_SLUGS`) reporting each run to its Crons monitor:
    ``in_progress`` when it starts, then ``ok``, or ``error`` when it raises (before the
    exception reaches the scheduler), with its duration, under one check-in id
    (sentry-sdk's ``monitor``). Without Sentry the check-ins go nowhere."""
    slug = MONITOR_SLUGS[job.__name__]
    config = monitor_config(every_s)

    def run() -> object:
        with sentry_sdk.monitor(monitor_slug=slug, monitor_config=config):
            return job()

    run.__name__ = job.__name__
    return run
