"""Lanes: no one provider may hold more than its share of a worker process's threads.

dramatiq's worker feeds every queue it consumes into one work queue served by one pool of
threads (``dramatiq.worker.Worker``: a consumer per queue, one shared ``PriorityQueue``), so
splitting messages over more queues alone would not stop a provider whose API hangs (a thin
event fetched, attempts times timeout) from taking every thread while healthy providers' results
wait behind it. Each call to a provider's API therefore runs in that provider's lane, which
may hold at most :attr:`Lanes.limit` threads at once: half of the process's threads, at
least one. A message whose call finds its lane full (``LaneFull``) gives its thread back at
once and comes back later (:func:`wait_for_lane`), so a slow provider slows only its own
results. Work that calls no provider (most results: ledger writes only) is not bounded, so
one busy provider still has every thread when it is the only one with work.

Hand-written rather than dramatiq's ``ConcurrentRateLimiter`` with ``Retry``: that path
counts each wait as a retry, and a provider that is merely busy would spend its retry
budget and be dead-lettered; a lane wait is not a failure and spends none.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
from dramatiq.common import q_name
from dramatiq.middleware import CurrentMessage, Middleware

__all__ = [
    "FIRST_WAIT_MS",
    "LANES",
    "LONGEST_WAIT_MS",
    "LaneFull",
    "Lanes",
    "LanesMiddleware",
    "wait_for_lane",
]

FIRST_WAIT_MS = 500
"""A message whose lane is full comes back after this long, doubling on each wait…"""
LONGEST_WAIT_MS = 10_000
"""…up to this (many waiting messages of a hanging provider cost Redis little)."""


class LaneFull(Exception):
    """The lane already holds its share of threads; the message comes back later."""


class Lanes:
    """Threads held per lane in this process; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()
        self.limit: int | None = None
        """Threads one lane may hold; ``None`` (no worker booted: a test, a command) means
        no bound."""

    def share_of(self, worker_threads: int) -> None:
        """Bound each lane to half of ``worker_threads`` (at least one)."""
        self.limit = max(1, worker_threads // 2)

    @contextmanager
    def hold(self, lane: str) -> Iterator[bool]:
        """A thread of ``lane`` for the block: True when taken, False (nothing held) when
        the lane already holds :attr:`limit` threads."""
        with self._lock:
            taken = self.limit is None or self._held[lane] < self.limit
            if taken:
                self._held[lane] += 1
        try:
            yield taken
        finally:
            if taken:
                with self._lock:
                    self._held[lane] -= 1


LANES = Lanes()
"""The lanes of this process (one worker per process)."""


class LanesMiddleware(Middleware):
    """Sets :data:`LANES`' bound from the booting worker's thread count."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        LANES.share_of(int(worker.worker_threads))


def wait_for_lane(broker: dramatiq.Broker) -> None:
    """Send the message being processed again, delayed (``FIRST_WAIT_MS`` doubling up to
    ``LONGEST_WAIT_MS``), with the same message id and without counting a retry; the
    caller then returns, and dramatiq acks this copy. A crash in between leaves two copies:
    harmless, the inbox applies an event once."""
    message = CurrentMessage.get_current_message()
    if message is None:
        raise RuntimeError("wait_for_lane outside a dramatiq message")
    waits = int(message.options.get("lane_waits", 0))
    delay = min(FIRST_WAIT_MS << min(waits, 16), LONGEST_WAIT_MS)
    again = message.copy(queue_name=q_name(message.queue_name), options={"lane_waits": waits + 1})
    broker.enqueue(again, delay=delay)
