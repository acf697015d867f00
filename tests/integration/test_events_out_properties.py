"""Events out as a property (hypothesis, SQLite and PostgreSQL): whatever the receiver does
with each request (take it, fail it with a 503, or apply it and answer too late) and
however the ledger's effects fall across accounts, once the delivery loop has run every
event is applied exactly once, each account's events were first applied in order with no
gap, and each account's balance at the receiver is the one the test computed from the
effects it made (the model: it never reads the ledger's balance or the outbox)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.events_out import EventsOut, EventsOutConfig
from ledger import Ledger
from ledger.outbox import Outbox
from tests.support.event_receiver import EventReceiver

SECRET = "whsec_" + "cHJvcGVydHktdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM="
EXAMPLES = int(os.environ.get("REFUNDRY_STATEFUL_EXAMPLES", "12"))

effects = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(["grant", "charge"]), st.integers(1, 50)),
    min_size=1,
    max_size=20,
)
fates = st.lists(st.sampled_from(["ok", "ok", "fail", "stall"]), max_size=30)


@pytest.mark.parametrize("fresh_ledgers", ["sqlite", "postgresql"], indirect=True)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(effects=effects, fates=fates)
def test_every_event_once_in_order_whatever_the_receiver_does(
    fresh_ledgers: Callable[[], Ledger], effects: list[tuple[int, str, int]], fates: list[str]
) -> None:
    ledger = fresh_ledgers()
    expected: dict[str, int] = {}
    for n, (a, kind, credits) in enumerate(effects):
        account = f"acct-{a}"
        if kind == "charge" and expected.get(account, 0) >= credits:
            ledger.charge(
                generation_id=f"gen-{n}",
                account_id=account,
                provider="kling",
                operation="video",
                credits=credits,
            )
            expected[account] -= credits
        elif kind == "grant":
            ledger.grant(account_id=account, credits=credits, idempotency_key=f"k{n}", reason="p")
            expected[account] = expected.get(account, 0) + credits
    clock = [int(time.time() * 1000)]
    script = dict(enumerate(fates, start=1))
    with EventReceiver(SECRET, script=lambda n: script.get(n, "ok"), stall_s=0.15) as receiver:
        config = EventsOutConfig(url=receiver.url, secret=SECRET, timeout_s=0.05, batch=10)
        sender = EventsOut(
            Outbox(ledger.db), config, clock=lambda: clock[0], rng=random.Random(1).random
        )
        try:
            for _ in range(200):
                sender.deliver_due(max_passes=1)
                if Outbox(ledger.db).figures().pending == 0:
                    break
                clock[0] += config.max_backoff_ms
        finally:
            sender.close()
        got = receiver.received
    figures = Outbox(ledger.db).figures()
    assert (figures.pending, figures.dead) == (0, 0)
    assert len(got.applied) == figures.delivered
    assert got.balances == expected
    for account, seen in got.sequences.items():
        assert seen == list(range(1, len(seen) + 1)), account
    assert got.balance_mismatches == []
    ledger.db.close()
