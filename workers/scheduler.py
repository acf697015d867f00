"""The ``scheduler`` process: runs the sweeps periodically (APScheduler).

dramatiq has no periodic tasks; its documentation points to APScheduler. The sweeps run in
this process rather than as actors, so that a broker outage cannot stop the very sweep that
repairs what the broker lost. Several schedulers may run: the sweeps lock in the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from apscheduler.schedulers.blocking import BlockingScheduler

from workers import runtime
from workers.logs import configure_logging
from workers.sentry_setup import init_sentry, monitored
from workers.settings import Settings
from workers.sweeps import (
    run_events_out,
    run_expiry_sweep,
    run_inbox_sweep,
    run_reconciliation,
    run_sla_check,
    run_stuck_sweep,
)

__all__ = ["run_scheduler", "scheduled_jobs"]

log = logging.getLogger(__name__)


EVENTS_OUT_IDLE_S = 1.0
"""How long the events-out loop waits when nothing was due."""


def _deliver_events_out() -> None:
    """Deliver events out for as long as the process runs: each run sends until nothing is
    due, then the loop waits :data:`EVENTS_OUT_IDLE_S`. Its own thread rather than an
    APScheduler job: a run outlasting its interval (an endpoint timing out) would log a
    skipped run every second, and a Crons check-in per second is no monitor."""
    while True:
        try:
            run_events_out()
        except Exception:  # logged (and sent to Sentry at ERROR), then tried again
            log.exception("events out: delivery run failed")
        time.sleep(EVENTS_OUT_IDLE_S)


def scheduled_jobs(s: Settings) -> list[tuple[Callable[[], object], int]]:
    """The periodic sweeps of the scheduler with their interval in seconds; each has its
    Sentry Crons monitor (``workers.sentry_setup.MONITOR_SLUGS``)."""
    jobs: list[tuple[Callable[[], object], int]] = [
        (run_inbox_sweep, s.sweep_interval_s),
        (run_stuck_sweep, s.sweep_interval_s),
        (run_sla_check, 60),
        (run_expiry_sweep, 60),
    ]
    if s.stripe_api_key:
        jobs.append((run_reconciliation, 300))
    return jobs


def run_scheduler() -> None:
    s = runtime.settings()
    configure_logging(s.log_format)
    init_sentry(s, process="scheduler")  # before a sweep builds the broker to enqueue
    runtime.ledger()  # migrate before the first sweep
    scheduler = BlockingScheduler()
    for job, every_s in scheduled_jobs(s):
        scheduler.add_job(
            monitored(job, every_s),  # a Sentry Crons check-in per run
            "interval",
            seconds=every_s,
            id=job.__name__,
            max_instances=1,
            coalesce=True,
        )
    if s.events_url:
        threading.Thread(target=_deliver_events_out, name="events-out", daemon=True).start()
    log.info(
        "scheduler: inbox and stuck sweeps every %d s (grace %d ms), SLA check and credit "
        "expiry every 60 s",
        s.sweep_interval_s,
        s.inbox_grace_ms,
    )
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopped")
