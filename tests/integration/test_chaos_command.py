"""``refundry chaos`` end to end: its own Redis, PostgreSQL, workers, scheduler, ingress and
fakes, a seeded workload with worker SIGKILLs and restarts, then its audit. The smoke size
runs in the default suite; the bigger run is marked ``slow`` (``pytest -m slow``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.commands import clean_env, refundry

FIGURES = {"events", "worker_kills", "redis_restarts", "postgres_restarts", "lost", "doubled"}
FIGURES |= {"minted", "sla_max_s", "seed"}


def _chaos(tmp_path: Path, *args: str, timeout: float) -> dict[str, object]:
    done = refundry(clean_env(tmp_path), "chaos", "--json", *args, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    figures: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(figures) >= FIGURES
    assert (figures["lost"], figures["doubled"], figures["minted"]) == (0, 0, 0)
    assert figures["unaccounted_dead_letters"] == 0 and figures["ledger_violations"] == 0
    assert figures["sla_breaches"] == 0 and figures["secrets_leaked"] == 0
    return figures


def test_a_small_chaos_run_loses_doubles_and_mints_nothing(tmp_path: Path) -> None:
    figures = _chaos(tmp_path, "--events", "100", "--seed", "11", "--workers", "2", timeout=300)
    assert figures["seed"] == 11
    assert int(str(figures["events"])) >= 100
    assert figures["worker_kills"] == 2
    assert (figures["redis_restarts"], figures["postgres_restarts"]) == (1, 1)
    assert int(str(figures["refunds"])) > 0


@pytest.mark.slow
def test_a_chaos_run_of_twenty_thousand_events_loses_doubles_and_mints_nothing(
    tmp_path: Path,
) -> None:
    figures = _chaos(tmp_path, "--events", "20000", "--seed", "20", timeout=3600)
    assert figures["worker_kills"] == 5
    assert int(str(figures["events"])) >= 20000
