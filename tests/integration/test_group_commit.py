"""The ingress' group commit over the real inbox (SQLite and PostgreSQL): concurrent callers
share transactions, each returns only once its own row is committed, a redelivery inside
one batch is still known, and an event the database refuses fails alone."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from handlers.intake import GroupCommit, new_event
from ledger import Ledger
from ledger.inbox import NewEvent, Recorded


def _event(key: str, payload: dict[str, Any] | None = None) -> NewEvent:
    body = payload if payload is not None else {"task_id": key, "task_status": "failed"}
    return new_event(kind="result", provider="kling", payload=body, webhook_id=key)


def test_concurrent_callers_each_return_their_own_committed_row(ledger: Ledger) -> None:
    kept: list[tuple[NewEvent, Recorded]] = []
    lock = threading.Lock()

    def on_kept(event: NewEvent, recorded: Recorded) -> None:
        with lock:
            kept.append((event, recorded))

    group = GroupCommit(ledger.inbox, on_kept=on_kept)
    events = [_event(f"msg-{i}") for i in range(200)]
    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            results = list(pool.map(lambda e: group.record_many([e])[0], events))
    finally:
        group.close()
    assert [r.id for r in results] == [e.id for e in events]
    assert all(r.new for r in results)
    assert all(ledger.inbox.get(e.id) is not None for e in events)  # committed on return
    assert len(kept) == 200


def test_the_same_delivery_twice_in_one_batch_is_kept_once(ledger: Ledger) -> None:
    group = GroupCommit(ledger.inbox)
    try:
        first, again = group.record_many([_event("msg-twice"), _event("msg-twice")])
    finally:
        group.close()
    assert (first.new, again.new, again.id, again.deliveries) == (True, False, first.id, 2)


def test_an_event_the_database_refuses_fails_alone(ledger: Ledger) -> None:
    group = GroupCommit(ledger.inbox)
    good = [_event(f"ok-{uuid.uuid4()}") for _ in range(3)]
    bad = _event("bad", {"not json": {1, 2}})  # cannot be stored
    try:
        futures = [group.submit(e) for e in (good[0], bad, good[1], good[2])]
        with pytest.raises(TypeError):
            futures[1].result(timeout=30)
        recorded = [f.result(timeout=30) for f in (futures[0], futures[2], futures[3])]
    finally:
        group.close()
    assert all(r.new for r in recorded)
    assert ledger.inbox.get(bad.id) is None


def test_an_event_whose_caller_gave_up_before_its_batch_is_not_kept(ledger: Ledger) -> None:
    inside, release = threading.Event(), threading.Event()

    def hold(event: NewEvent, recorded: Recorded) -> None:  # the writer waits here
        inside.set()
        release.wait(10)

    group = GroupCommit(ledger.inbox, on_kept=hold)
    first = group.submit(_event("first"))
    assert inside.wait(10)  # the writer is busy with the first batch
    given_up = group.submit(_event("given-up"))
    assert given_up.cancel()  # its caller's deadline passed while it waited
    release.set()
    group.close()
    assert first.result(timeout=30).new
    assert ledger.inbox.counts()["pending"]["n"] == 1  # only the first was kept
