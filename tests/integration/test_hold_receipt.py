"""A generation charged as a hold: its receipt says what happened to the credits. A voided
hold (a refunded outcome) was never charged: its receipt says so, not "waiting" or "kept";
a captured hold is kept, and a pending one waits. On SQLite and PostgreSQL."""

from __future__ import annotations

from ledger import Ledger, Outcome, now_ms
from ledger.receipts import read_receipt
from workers.api_routes import receipt_body


def _held(ledger: Ledger, generation_id: str) -> None:
    ledger.grant(account_id="acct_hr", credits=10, idempotency_key=f"s-{generation_id}", reason="s")
    ledger.charge(
        generation_id=generation_id,
        account_id="acct_hr",
        provider="openai",
        operation="video",
        credits=10,
        provider_job_id=f"video_{generation_id}",
        mode="hold",
    )


def _settle(ledger: Ledger, generation_id: str, outcome: Outcome, refund: bool) -> None:
    ledger.settle(
        generation_id=generation_id,
        outcome=outcome,
        reason="test",
        refund=refund,
        failure_known_at_ms=now_ms(),
        policy_version="v-hold",
        rule="refund_outcomes",
    )


def _receipt(ledger: Ledger, generation_id: str) -> dict[str, object]:
    receipt = read_receipt(ledger.db, generation_id)
    assert receipt is not None
    return receipt_body(receipt)


def test_a_voided_hold_shows_as_not_charged(ledger: Ledger) -> None:
    _held(ledger, "gen-hv")
    assert _receipt(ledger, "gen-hv")["status"] == "waiting"
    _settle(ledger, "gen-hv", Outcome.MODERATED, refund=True)
    body = _receipt(ledger, "gen-hv")
    assert body["status"] == "not_charged"
    assert body["refund"] is None and body["refund_deadline"] is None
    assert body["policy_version"] == "v-hold"
    assert ledger.balance("acct_hr") == 10


def test_a_captured_hold_shows_as_kept(ledger: Ledger) -> None:
    _held(ledger, "gen-hc")
    _settle(ledger, "gen-hc", Outcome.SUCCEEDED, refund=False)
    assert _receipt(ledger, "gen-hc")["status"] == "kept"
    assert ledger.balance("acct_hr") == 0


def test_a_waiting_generation_names_the_version_its_charge_recorded(ledger: Ledger) -> None:
    ledger.grant(account_id="acct_hr", credits=10, idempotency_key="s-gen-dw", reason="s")
    ledger.under("v-charge").charge(
        generation_id="gen-dw",
        account_id="acct_hr",
        provider="openai",
        operation="video",
        credits=10,
        provider_job_id="video_gen-dw",
    )
    body = _receipt(ledger, "gen-dw")
    assert (body["status"], body["policy_version"]) == ("waiting", "v-charge")
