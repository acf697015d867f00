"""Bounded polling for tests: wait for a condition instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "",
) -> T:
    """Call ``predicate`` until it returns a truthy value, at most ``timeout`` seconds.

    Returns that truthy value. Raises ``AssertionError(message)`` when the time is up.
    The predicate is always evaluated at least once, and once more at the deadline.
    Exceptions raised by the predicate propagate unchanged.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(message or f"condition not met within {timeout:g} s")
        time.sleep(min(interval, remaining))
