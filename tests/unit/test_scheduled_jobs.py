"""Every sweep the scheduler runs has its Sentry Crons monitor: a sweep without one stopped
`refundry scheduler` at start (a KeyError before the first run)."""

from __future__ import annotations

import dataclasses

from workers.scheduler import scheduled_jobs
from workers.sentry_setup import MONITOR_SLUGS
from workers.settings import Settings


def test_every_scheduled_sweep_has_a_crons_monitor() -> None:
    plain = Settings.from_env({"REFUNDRY_HOME": "unused"})
    with_stripe = dataclasses.replace(plain, stripe_api_key="sk_test_x")
    for settings in (plain, with_stripe):
        names = [job.__name__ for job, _ in scheduled_jobs(settings)]
        assert names and all(name in MONITOR_SLUGS for name in names), names
    assert "run_reconciliation" in [job.__name__ for job, _ in scheduled_jobs(with_stripe)]
