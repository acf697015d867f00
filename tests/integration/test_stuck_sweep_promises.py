"""The stuck sweep keeps the refund promise whatever the backlog, the time it ran, or what
waits in the inbox; its polls stay within the process's concurrency across sweeps. On
SQLite and PostgreSQL, through the scheduler's own entry point (``workers.sweeps``) with
the settings read from the environment; time is injected (``at_ms``) except where the
ledger's own stamp is the subject."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from handlers.sla import sla_report
from ledger import Outcome, now_ms
from tests.support.settings import configure
from tests.support.waiting import wait_until
from workers import client, runtime
from workers.budgets import Budgets

MINUTE = 60_000
CREDITS = 10


def _charge(gen: str, *, operation: str = "training", hard_ms: int | None = None) -> int:
    """Charge ``gen`` on replicate (job ``j<gen>``) with the configured deadlines (or a hard
    deadline of ``hard_ms``, polled at once); its charge time in ms."""
    deadline = runtime.deadlines().for_generation("replicate", operation)
    runtime.ledger().charge(
        generation_id=gen,
        account_id="acct",
        provider="replicate",
        operation=operation,
        credits=CREDITS,
        provider_job_id=f"j{gen}",
        poll_after_ms=deadline.poll_after_ms if hard_ms is None else 0,
        deadline_after_ms=deadline.hard_ms if hard_ms is None else hard_ms,
    )
    charged = runtime.ledger().generation(gen)
    assert charged is not None
    return charged.charged_at_ms


def _outcome(gen: str) -> Outcome | None:
    found = runtime.ledger().generation(gen)
    assert found is not None
    return found.outcome


def test_a_backlog_bigger_than_one_batch_is_refunded_within_the_promise(
    refundry_env: dict[str, str],
) -> None:
    """One batch more than a sweep claims at once: every generation is refunded by the
    first sweep after its hard deadline, within the worst case the settings were accepted
    for, never a sweep interval later."""
    from workers.sweeps import run_stuck_sweep

    s = runtime.settings()
    n = s.stuck_batch + 1
    client.grant(account_id="acct", credits=CREDITS * n, idempotency_key="top", reason="t")
    charged = {f"t{i}": _charge(f"t{i}") for i in range(n)}
    hard = 50 * MINUTE  # LoRA training, the latest default hard deadline
    sweep_at = max(charged.values()) + hard

    result = run_stuck_sweep(at_ms=sweep_at)

    late = [gen for gen in charged if _outcome(gen) is not Outcome.FAILED]
    assert (result.refunded_as_lost, late) == (n, [])
    assert sweep_at - min(charged.values()) <= Budgets(s).stuck_path_worst_ms(runtime.deadlines())
    assert client.balance("acct") == CREDITS * n


def test_a_stuck_refund_is_late_from_its_hard_deadline_not_from_the_sweep(
    refundry_env: dict[str, str],
) -> None:
    """The failure of a stuck generation is knowable when its hard deadline passes: a sweep
    that comes round late makes a late refund, and the SLA report counts it as a breach."""
    from workers.sweeps import run_stuck_sweep

    client.grant(account_id="acct", credits=100, idempotency_key="top", reason="t")
    charged = _charge("slow", operation="video", hard_ms=100)
    late_by_ms = 500
    wait_until(lambda: now_ms() >= charged + 100 + late_by_ms, timeout=5)

    assert run_stuck_sweep().refunded_as_lost == 1

    report = sla_report(runtime.ledger(), window_ms=MINUTE, sla_ms=late_by_ms - 100)
    assert report.breaches == 1
    assert report.max_ms is not None and report.max_ms >= late_by_ms


def test_a_result_kept_before_the_hard_deadline_is_applied_not_overridden(
    refundry_env: dict[str, str],
) -> None:
    """The provider's success reached the inbox in time; no worker has applied it yet when
    the sweep passes the hard deadline. The sweep applies it: the credits stay spent. A
    result kept after the hard deadline does not stop the refund."""
    from workers.sweeps import run_stuck_sweep

    client.grant(account_id="acct", credits=100, idempotency_key="top", reason="t")
    charged = _charge("v1", operation="video")  # hard deadline: 45 minutes
    _charge("v2", operation="video")
    done = {"id": "jv1", "status": "succeeded", "output": ["https://r.example/v1.mp4"]}
    kept = client.report_result(provider="replicate", payload=done)

    result = run_stuck_sweep(at_ms=charged + 46 * MINUTE)

    assert _outcome("v1") is Outcome.SUCCEEDED
    assert _outcome("v2") is Outcome.FAILED
    assert result.refunded_as_lost == 1
    item = runtime.ledger().inbox.get(kept)
    assert item is not None and item.state == "processed"
    assert client.balance("acct") == 100 - CREDITS


class HangingStatusAPI:
    """A status API that accepts every request and answers none until closed."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.in_flight = 0
        self.most_at_once = 0
        lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    api.in_flight += 1
                    api.most_at_once = max(api.most_at_once, api.in_flight)
                try:
                    api.release.wait(120)
                finally:
                    with lock:
                        api.in_flight -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hanging() -> Iterator[HangingStatusAPI]:
    api = HangingStatusAPI()
    yield api
    api.close()


def test_polls_a_sweep_stopped_waiting_for_still_count_against_the_process_concurrency(
    refundry_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, hanging: HangingStatusAPI
) -> None:
    """Sweeps one after another against a status API that never answers: the polls an
    earlier sweep gave up on still run, so later sweeps start fewer; never more at once than
    REFUNDRY_POLL_CONCURRENCY."""
    configure(
        monkeypatch,
        refundry_env,
        REPLICATE_API_TOKEN="r8_test_token",
        REPLICATE_API_BASE=hanging.url,
        REFUNDRY_POLL_BUDGET_S="1",
        REFUNDRY_POLL_CONCURRENCY="2",
    )
    from workers.sweeps import run_stuck_sweep

    client.grant(account_id="acct", credits=100, idempotency_key="top", reason="t")
    first = min(_charge(f"p{i}", operation="video") for i in range(6))
    for k in range(3):  # each sweep after the previous one's lease ran out
        result = run_stuck_sweep(at_ms=first + 11 * MINUTE + k * 2 * MINUTE)
        assert result.refunded_as_lost == 0
    wait_until(lambda: hanging.in_flight >= 2, timeout=5)

    assert hanging.most_at_once <= 2
    assert all(_outcome(f"p{i}") is None for i in range(6))
