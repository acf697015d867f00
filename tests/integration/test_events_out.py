"""Events out, end to end on SQLite and PostgreSQL: every ledger effect leaves an outbox row
in its own transaction, and a delivery loop brings each event, signed with Standard
Webhooks, to a local receiver that verifies it with the official library, fails the first
attempts (503s and timeouts) and is down for a while. Every event arrives, none is applied
twice, each account's events arrive in order, and the receiver's balances are the
ledger's. Backoff is driven by a clock the test moves: nothing sleeps but the receiver's
own stalls (which the sender's timeout cuts short)."""

from __future__ import annotations

import base64
import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from handlers.events_out import DeliveryPass, EventsOut, EventsOutConfig
from ledger import Ledger
from ledger.outbox import Outbox, webhook_id
from ledger.outcomes import Outcome
from ledger.payment_types import Reversal
from tests.support.event_receiver import EventReceiver

SECRET = "whsec_" + base64.b64encode(b"refundry-events-out-test-key-32b").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"someone-else-s-key-of-32-bytes!!").decode()

DAY_MS = 86_400_000


class Clock:
    """The delivery loop's clock (epoch ms), moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.ms = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


def _sender(
    ledger: Ledger, url: str, clock: Clock, secret: str = SECRET, timeout_s: float = 0.25
) -> EventsOut:
    config = EventsOutConfig(
        url=url,
        secret=secret,
        timeout_s=timeout_s,
        backoff_base_ms=1_000,
        max_backoff_ms=60_000,
        give_up_ms=3 * DAY_MS,
        concurrency=4,
    )
    return EventsOut(Outbox(ledger.db), config, clock=clock, rng=random.Random(7).random)


def _activity(ledger: Ledger, accounts: int, generations: int) -> None:
    """Grants, charges, refunds (one by one and several in one transaction), a pack landed
    and partly refunded at the provider: every kind of entry the ledger writes today."""
    for a in range(accounts):
        account = f"acct-{a}"
        ledger.grant(account_id=account, credits=10_000, idempotency_key=f"top-{a}", reason="t")
        for g in range(generations):
            ledger.charge(
                generation_id=f"gen-{a}-{g}",
                account_id=account,
                provider="kling",
                operation="video",
                credits=10 + g,
            )
        for g in range(0, generations, 3):
            _refund(ledger, f"gen-{a}-{g}", Outcome.FAILED)
        with ledger.db.write() as tx:  # a batch: several refunds, one commit
            later: dict[str, int] = {}
            for g in range(1, generations, 3):
                _refund(ledger, f"gen-{a}-{g}", Outcome.EMPTY_SUCCESS, tx=tx, credit_later=later)
            ledger.credit_accounts(tx, later)
    pi = "pi_events_out_1"
    ledger.payments.observe(
        purchase_key=pi,
        provider="stripe",
        state="paid",
        account_id="acct-0",
        price_id="price_pack",
        credits=500,
        amount=1_000,
        currency="usd",
        paid_at_ms=int(time.time() * 1000),
    )
    ledger.payments.grant(pi, reason="pack paid")
    ledger.payments.record_reversals(pi, [Reversal("re_half", "refund", 500)], reason="refund")


def _refund(ledger: Ledger, generation_id: str, outcome: Outcome, **batch: Any) -> None:
    ledger.settle(
        generation_id=generation_id,
        outcome=outcome,
        reason=outcome.value,
        refund=True,
        failure_known_at_ms=int(time.time() * 1000),
        **batch,
    )


def _entries(ledger: Ledger) -> list[dict[str, object]]:
    with ledger.db.read() as tx:
        return tx.all("entries_between", after_id=0, since_ms=0, until_ms=2**62, limit=10**6)


def _drive(
    sender: EventsOut, ledger: Ledger, clock: Clock, one_per_pass: bool = True, **hooks: object
) -> DeliveryPass:
    """Delivery passes until nothing is pending; ``hooks`` maps a pass number to a callable
    run before it (take the receiver down, bring it back). Each pass sends at most one event
    per account; the clock moves a minute (the longest backoff) between passes."""
    total = DeliveryPass()
    outbox = Outbox(ledger.db)
    for n in range(300):
        hook = hooks.get(f"before_{n}")
        if callable(hook):
            hook()
        done = sender.deliver_due(max_passes=1 if one_per_pass else 1000)
        total.delivered += done.delivered
        total.retried += done.retried
        total.dead += done.dead
        total.lost_claims += done.lost_claims
        if outbox.figures().pending == 0:
            return total
        clock.advance(60_000)
    raise AssertionError(f"events still pending after 300 passes: {outbox.figures()}")


def test_every_event_arrives_once_in_order_through_failures_timeouts_and_an_outage(
    ledger: Ledger,
) -> None:
    _activity(ledger, accounts=4, generations=12)
    entries = _entries(ledger)
    plan = {**dict.fromkeys(range(1, 6), "fail"), **dict.fromkeys((9, 14, 30), "stall")}
    clock = Clock()
    with EventReceiver(SECRET, script=lambda n: plan.get(n, "ok"), stall_s=0.6) as receiver:
        sender = _sender(ledger, receiver.url, clock)
        try:
            started = time.monotonic()
            done = _drive(
                sender,
                ledger,
                clock,
                before_3=receiver.stop,  # down for three passes: connections refused
                before_6=receiver.start,
            )
            elapsed = time.monotonic() - started
        finally:
            sender.close()
        got = receiver.received

    assert set(got.applied) == {webhook_id(str(e["idempotency_key"])) for e in entries}
    assert got.redeliveries >= 1  # a stalled answer timed out: sent again, applied once
    assert got.failed == 5 and got.stalled == 3
    for account, seen in got.sequences.items():
        assert seen == list(range(1, len(seen) + 1)), account  # in order, no gap
    for account, balance in got.balances.items():
        assert balance == ledger.balance(account), account
    assert got.balance_mismatches == []  # each event's balance_after is the running sum
    figures = Outbox(ledger.db).figures()
    assert (figures.delivered, figures.pending, figures.dead) == (len(entries), 0, 0)
    assert done.delivered == len(entries) and done.dead == 0
    assert figures.retries == done.retried >= 5 + 3 + 1  # failures, stalls, the outage
    types = {event["type"] for event in got.applied.values()}
    assert types == {
        "credits.granted",
        "generation.charged",
        "generation.refunded",
        "pack.granted",
        "pack.refunded",
    }
    print(f"\nevents out: {len(entries)} events in {elapsed:.2f} s, {done.retried} retries")


def test_each_attempt_sends_the_same_body_under_the_same_webhook_id(ledger: Ledger) -> None:
    ledger.grant(account_id="acct-same", credits=5, idempotency_key="same", reason="t")
    clock = Clock()
    bodies: list[tuple[str, bytes]] = []
    with EventReceiver(SECRET, script=lambda n: "fail" if n < 3 else "ok") as receiver:
        sender = _sender(ledger, receiver.url, clock)
        original = sender._send

        def spy(event):  # type: ignore[no-untyped-def]
            bodies.append((event.webhook_id, event.body.encode()))
            return original(event)

        sender._send = spy  # type: ignore[method-assign]
        try:
            _drive(sender, ledger, clock)
        finally:
            sender.close()
    assert len(bodies) == 3 and len(set(bodies)) == 1
    event = json.loads(bodies[0][1])
    assert event["type"] == "credits.granted"
    assert event["data"]["amount"] == 5 and event["data"]["idempotency_key"] == "grant:same"
    assert event["timestamp"].endswith("Z")


def test_an_effect_rolled_back_leaves_no_event(ledger: Ledger) -> None:
    ledger.grant(account_id="acct-rb", credits=100, idempotency_key="rb", reason="t")
    before = Outbox(ledger.db).figures().pending

    class Boom(Exception):
        pass

    with pytest.raises(Boom), ledger.db.write() as tx:
        ledger.charge(
            generation_id="gen-rb",
            account_id="acct-rb",
            provider="kling",
            operation="video",
            credits=40,
            tx=tx,
        )
        raise Boom
    assert Outbox(ledger.db).figures().pending == before
    assert ledger.generation("gen-rb") is None and ledger.balance("acct-rb") == 100


def test_concurrent_writers_number_an_accounts_events_without_a_gap(ledger: Ledger) -> None:
    ledger.grant(account_id="acct-race", credits=1, idempotency_key="race-0", reason="t")

    def grants(worker: int) -> None:
        for i in range(15):
            ledger.grant(
                account_id="acct-race", credits=1, idempotency_key=f"race-{worker}-{i}", reason="t"
            )

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(grants, range(4)))
    with ledger.db.read() as tx:
        rows = tx.all("outbox_due", now_ms=2**62, limit=1000)
    assert len(rows) == 1 and rows[0]["seq"] == 1  # only the account's first event is due
    seqs = _seqs(ledger, "acct-race")
    assert seqs == list(range(1, 62))


def _seqs(ledger: Ledger, account: str) -> list[int]:
    with ledger.db.read() as tx:
        return [int(r["seq"]) for r in tx.all("outbox_sequences", account_id=account)]


def test_a_receiver_with_another_secret_refuses_every_event_until_it_is_dead_lettered(
    ledger: Ledger,
) -> None:
    from workers import dead_letter_operations as dlq

    ledger.grant(account_id="acct-w", credits=10, idempotency_key="w-1", reason="t")
    ledger.grant(account_id="acct-w", credits=20, idempotency_key="w-2", reason="t")
    clock = Clock()
    with EventReceiver(OTHER_SECRET) as wrong:
        unsigned = httpx.post(wrong.url, content=b'{"type":"credits.granted","data":{}}')
        assert unsigned.status_code == 401  # the receiver takes nothing unsigned
        sender = _sender(ledger, wrong.url, clock)
        try:
            first = sender.deliver_due()
            assert first.retried == 1 and first.delivered == 0  # one per account at a time
            for _ in range(7):  # 3 days for the first, then 3 days for the next
                clock.advance(DAY_MS)
                sender.deliver_due()
        finally:
            sender.close()
        assert wrong.received.applied == {} and wrong.received.refused >= 4
    dead = dlq.listed(ledger, dlq.Filters(queue="events_out"))
    assert len(dead) == 2  # the first given up after 3 days, then the next took its turn
    assert all(d.error_class == "EventNotDelivered" and "HTTP 401" in d.reason for d in dead)
    assert SECRET not in json.dumps([d.summary() for d in dead])
    with EventReceiver(SECRET) as right:
        sender = _sender(ledger, right.url, clock)
        try:  # the later event replayed first: the earlier one arrives last
            for letter in sorted(dead, key=lambda d: int(d.message_id.removeprefix("event:")))[
                ::-1
            ]:
                dlq.replay(ledger, letter.message_id, enqueue=lambda kind, inbox_id: None)
                _drive(sender, ledger, clock)
        finally:
            sender.close()
        assert right.received.balances == {"acct-w": 30}
        assert right.received.sequences == {"acct-w": [2, 1]}
        assert right.received.balances_after == {"acct-w": (2, 30)}  # not seq 1's 10
    assert dlq.listed(ledger, dlq.Filters(queue="events_out")) == []


def test_two_senders_never_send_one_event_at_once(ledger: Ledger) -> None:
    """Two senders' passes at once, seen by the receiver: no ``webhook-id`` is ever in
    flight twice. An attempt that failed (a timeout under load) waits for its backoff on
    the test's clock, so passes repeat, a backoff cap apart, until all is delivered."""
    for a in range(6):
        for i in range(5):
            ledger.grant(account_id=f"acct-{a}", credits=1, idempotency_key=f"{a}-{i}", reason="t")
    clock = Clock()
    outbox = Outbox(ledger.db)
    retried = 0
    # Each request is held a little while in flight, so a double send would overlap.
    with EventReceiver(SECRET, script=lambda n: "stall", stall_s=0.02) as receiver:
        senders = [_sender(ledger, receiver.url, clock, timeout_s=5) for _ in range(2)]
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                for _ in range(20):
                    passes = list(pool.map(lambda s: s.deliver_due(), senders))
                    retried += sum(p.retried for p in passes)
                    if outbox.figures().pending == 0:
                        break
                    clock.advance(60_000)  # the longest backoff: every retry is due
        finally:
            for sender in senders:
                sender.close()
        got = receiver.received
        assert got.overlaps == []
        assert len(got.applied) == 30 and got.redeliveries <= retried


def test_delivery_rate_to_a_healthy_receiver(ledger: Ledger) -> None:
    """Events/s delivered to a receiver that takes everything (size: REFUNDRY_TEST_EVENTS)."""
    count = int(os.environ.get("REFUNDRY_TEST_EVENTS", "400"))
    accounts = 20
    with ledger.db.write() as tx:
        for i in range(count):
            account = f"acct-{i % accounts}"
            tx.all("ensure_account", account_id=account, now_ms=0)
            ledger._insert_entry(
                tx,
                key=f"grant:rate-{i}",
                account_id=account,
                kind="grant",
                amount=1,
                generation_id=None,
                reason="rate",
                failure_known_at_ms=None,
            )
            ledger._credit(tx, account, 1)
    clock = Clock()
    with EventReceiver(SECRET) as receiver:
        # a generous timeout: on a loaded machine an attempt may still time out, and is
        # then retried (the loop moves the clock), never counted as delivered twice
        sender = _sender(ledger, receiver.url, clock, timeout_s=5)
        try:
            started = time.monotonic()
            done = _drive(sender, ledger, clock, one_per_pass=False)
            elapsed = time.monotonic() - started
        finally:
            sender.close()
    assert done.delivered == count and len(receiver.received.applied) == count
    print(f"\nevents out: {count} events in {elapsed:.2f} s: {count / elapsed:.0f}/s", end="")
    print(f" ({done.retried} retries)")


def test_during_a_rotation_receivers_with_either_secret_verify(ledger: Ledger) -> None:
    clock = Clock()
    with EventReceiver(OTHER_SECRET) as new, EventReceiver(SECRET) as old:
        for n, receiver in enumerate((new, old)):
            ledger.grant(account_id="acct-rot", credits=9, idempotency_key=f"r{n}", reason="t")
            sender = _sender(ledger, receiver.url, clock, secret=f"{SECRET},{OTHER_SECRET}")
            try:
                _drive(sender, ledger, clock)
            finally:
                sender.close()
            assert len(receiver.received.applied) == 1 and receiver.received.refused == 0


def test_a_purged_event_is_never_sent_and_its_account_goes_on(ledger: Ledger) -> None:
    from workers import dead_letter_operations as dlq

    ledger.grant(account_id="acct-p", credits=1, idempotency_key="p-1", reason="t")
    clock = Clock()
    with EventReceiver(SECRET, script=lambda n: "fail") as failing:
        sender = _sender(ledger, failing.url, clock)
        try:
            sender.deliver_due()
            clock.advance(3 * DAY_MS)
            assert sender.deliver_due().dead == 1
        finally:
            sender.close()
    (letter,) = dlq.listed(ledger, dlq.Filters(queue="events_out"))
    dlq.purge(ledger, letter.message_id)
    assert dlq.listed(ledger, dlq.Filters(queue="events_out")) == []
    ledger.grant(account_id="acct-p", credits=2, idempotency_key="p-2", reason="t")
    with EventReceiver(SECRET) as receiver:
        sender = _sender(ledger, receiver.url, clock)
        try:
            _drive(sender, ledger, clock)
        finally:
            sender.close()
        assert receiver.received.sequences == {"acct-p": [2]}  # the purged one never went
    assert Outbox(ledger.db).figures().dead == 0
