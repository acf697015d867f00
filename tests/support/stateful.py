"""What the state machines (``tests/integration/test_*_state_machine.py``) share: how long
they run, the inbox ids they make, the inbox sweep onto a machine's own broker queue, and
running one machine with a fresh ledger per example.

A replayed example must draw the same choices from the same state (Hypothesis checks it), so
nothing a machine draws from may depend on the clock or on chance: inbox ids come from a
counter, and the sweep puts what it sends again on the queue in the order of those ids,
not in the order of their enqueue times (rows claimed in the same millisecond tie).

``REFUNDRY_STATEFUL_EXAMPLES`` and ``REFUNDRY_STATEFUL_STEPS`` make every machine run longer
than its default (see README, "Longer property runs").
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine

from handlers.inbox_sweep import sweep_inbox
from ledger import Ledger

__all__ = ["examples_and_steps", "inbox_ids", "run_machine", "sweep_onto"]


def examples_and_steps(examples: int, steps: int) -> tuple[int, int]:
    """The run's size: the machine's defaults, unless the environment asks for more."""
    return (
        int(os.environ.get("REFUNDRY_STATEFUL_EXAMPLES", str(examples))),
        int(os.environ.get("REFUNDRY_STATEFUL_STEPS", str(steps))),
    )


def inbox_ids() -> Iterator[str]:
    """One example's inbox ids, in the order they are made (they sort as made)."""
    return (f"inbox{n:08d}" for n in itertools.count())


def sweep_onto(ledger: Ledger, queue: list[str], *, give_up_ms: int) -> None:
    """The inbox sweep with no grace period: every pending inbox row is sent again, onto
    ``queue`` (the machine's broker: inbox ids, taken in any order), oldest id first."""
    sent: list[str] = []
    sweep_inbox(
        ledger,
        lambda kind, inbox_id: sent.append(inbox_id),
        grace_ms=-1,
        give_up_ms=give_up_ms,
    )
    queue.extend(sorted(sent))


def run_machine(
    machine: type[RuleBasedStateMachine],
    open_fresh_ledger: Callable[[], Ledger],
    *,
    examples: int,
    steps: int,
) -> None:
    """Run ``machine`` (whose ``open_fresh_ledger`` opens each example's ledger) for at most
    ``examples`` examples of at most ``steps`` steps; no deadline, since every step goes
    through a real database and, for payments, a local HTTP server."""
    subclass = type(
        f"{machine.__name__}Run", (machine,), {"open_fresh_ledger": staticmethod(open_fresh_ledger)}
    )
    case = subclass.TestCase
    case.settings = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    case().runTest()
