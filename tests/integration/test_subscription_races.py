"""A cancellation and an invoice recorded at the same moment always see each other: the one
that commits second finds the first, whichever it is, so a charge paid after the
cancellation is never missed by both."""

from __future__ import annotations

import threading

from ledger import Ledger

ROUNDS = 15


def _race(ledger: Ledger, n: int) -> dict[str, object]:
    sub = f"sub_race{n}"
    start = threading.Barrier(2)
    seen: dict[str, object] = {}

    def cancel() -> None:
        start.wait(timeout=10)
        _, charges = ledger.subscriptions.record_cancellation(
            subscription_id=sub, customer="cus_1", cancelled_at_ms=1_000
        )
        seen["charges"] = charges

    def invoice() -> None:
        start.wait(timeout=10)
        _, cancellation = ledger.subscriptions.record_charge(
            invoice_id=f"in_race{n}",
            subscription_id=sub,
            customer="cus_1",
            payment_intent=f"pi_race{n}",
            amount=900,
            currency="usd",
            paid_at_ms=2_000,
        )
        seen["cancellation"] = cancellation

    threads = [threading.Thread(target=cancel), threading.Thread(target=invoice)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return seen


def test_a_cancellation_and_an_invoice_recorded_at_once_always_see_each_other(
    ledger: Ledger,
) -> None:
    for n in range(ROUNDS):
        seen = _race(ledger, n)
        assert seen.keys() == {"charges", "cancellation"}, "a thread did not finish"
        assert seen["charges"] or seen["cancellation"] is not None, f"round {n}: neither saw"
