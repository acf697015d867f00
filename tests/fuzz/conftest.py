"""Fuzzing settings and the count of inputs tried.

In the default suite each fuzz test runs hypothesis's default number of examples. A long
run sets ``REFUNDRY_FUZZ_EXAMPLES`` (examples per test) and, to record how many inputs were
tried, ``REFUNDRY_FUZZ_COUNT_FILE``: each test adds its count there as a JSON object
(target → inputs) when the session ends (``scripts/fuzz.sh``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_EXAMPLES = os.environ.get("REFUNDRY_FUZZ_EXAMPLES")
if _EXAMPLES:
    settings.register_profile(
        "fuzz-long",
        max_examples=int(_EXAMPLES),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.load_profile("fuzz-long")

_COUNTS: Counter[str] = Counter()


def count(target: str) -> None:
    """One more input tried against ``target``."""
    _COUNTS[target] += 1


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("REFUNDRY_FUZZ_COUNT_FILE")
    if not target:
        return
    path = Path(target)
    before: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
    for name, n in _COUNTS.items():
        before[name] = before.get(name, 0) + n
    path.write_text(json.dumps(before, indent=1, sort_keys=True))
