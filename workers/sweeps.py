"""The periodic sweeps, wired to this process's ledger and broker.

Each is safe to run from several schedulers at once: the inbox sweep claims rows in the
database (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), and the
SLA check only reads.
"""

from __future__ import annotations

from handlers.alerts import alert
from handlers.deadlines import FALLBACK
from handlers.events_out import DeliveryPass, EventsOut
from handlers.inbox_sweep import InboxSweepResult, sweep_inbox
from handlers.reconcile import Reconciliation, reconcile
from handlers.sla import SlaReport, overdue_events, sla_report
from handlers.stuck_sweep import StuckSweepResult, sweep_stuck_generations
from ledger import Ledger, now_ms
from ledger.expiry import ExpiryResult
from ledger.outbox import Outbox
from workers import runtime
from workers.setting_values import events_out_of

__all__ = [
    "run_events_out",
    "run_expiry_sweep",
    "run_inbox_sweep",
    "run_reconciliation",
    "run_sla_check",
    "run_stuck_sweep",
]


def run_inbox_sweep(grace_ms: int | None = None) -> InboxSweepResult:
    """One inbox sweep; ``grace_ms`` overrides ``REFUNDRY_INBOX_GRACE_MS``. The broker is
    only reached when an event is due."""
    s = runtime.settings()
    return sweep_inbox(
        runtime.ledger(),
        runtime.enqueue,
        grace_ms=s.inbox_grace_ms if grace_ms is None else grace_ms,
        give_up_ms=s.inbox_give_up_ms,
    )


def run_sla_check(window_ms: int | None = None) -> SlaReport:
    """The SLA report over ``window_ms`` (default: one SLA long); logs an alert per breach
    and per overdue event."""
    s = runtime.settings()
    window_ms = s.refund_sla_ms if window_ms is None else window_ms
    ledger = runtime.ledger()
    overdue_events(ledger, warn_ms=s.sla_warn_ms)
    return sla_report(ledger, window_ms=window_ms, sla_ms=s.refund_sla_ms)


def run_stuck_sweep(at_ms: int | None = None) -> StuckSweepResult:
    """Poll generations past their deadline; refund those lost, however many are due
    (``at_ms``: tests). Polls share this process's bound (``runtime.status_polls``)."""
    s = runtime.settings()
    return sweep_stuck_generations(
        runtime.ledger(),
        fetchers=runtime.job_fetchers(),
        policy=runtime.policy(),
        poll_interval_ms=s.poll_interval_s * 1000,
        default_poll_after_ms=FALLBACK.poll_after_ms,
        default_hard_ms=FALLBACK.hard_ms,
        batch=s.stuck_batch,
        at_ms=at_ms,
        polls=runtime.status_polls(),
        poll_budget_s=s.poll_budget_s,
    )


def run_reconciliation(since_s: int | None = None, dry_run: bool = False) -> Reconciliation:
    """Compare the payment provider's paid objects with the ledger; settle unlanded packs.
    Looks back at least 24 hours (and at least twice the landing window) by default."""
    s = runtime.settings()
    if since_s is None:
        since_s = now_ms() // 1000 - max(24 * 3600, 2 * s.landing_window_s)
    stripe = runtime.stripe_api()  # without a key, refused before the ledger is opened
    report = reconcile(
        runtime.ledger(),
        stripe,
        catalog=runtime.catalog(),
        policy=runtime.payment_policy(),
        since_s=since_s,
        dry_run=dry_run,
        book=runtime.policy_book(),
    )
    for decision in [] if dry_run else report.decisions:  # each decided once per run
        alert(
            "reconciliation",
            f"reconciliation: {decision['action']}: {decision['why']}",
            provider="stripe",
            reason=decision["action"],
            level="error" if decision["action"] == "alert" else "warning",
            about={"purchase": decision["purchase"]},
        )
    return report


def run_expiry_sweep(at_ms: int | None = None) -> ExpiryResult:
    """Write off the credits past their lot's expiry (``ledger.expiry``): one entry per lot
    and expiry, safe from several schedulers at once (``at_ms``: tests)."""
    return runtime.ledger().expire_due(at_ms=at_ms)


_events_out: list[tuple[Ledger, EventsOut]] = []
"""This process's sender, with the ledger it was built for (kept for its HTTP connections)."""


def run_events_out() -> DeliveryPass | None:
    """Deliver every event due to ``REFUNDRY_EVENTS_URL`` (``handlers.events_out``); None
    when events out are off (the outbox keeps its rows for when they are turned on)."""
    config = events_out_of(runtime.settings())
    if config is None:
        return None
    ledger = runtime.ledger()
    if not _events_out or _events_out[0][0] is not ledger:  # first run, or a new ledger
        _events_out[:] = [(ledger, EventsOut(Outbox(ledger.db), config))]
    return _events_out[0][1].deliver_due()
