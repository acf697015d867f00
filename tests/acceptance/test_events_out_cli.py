"""Events out from the command line: ``refundry sweep`` delivers the outbox to
``REFUNDRY_EVENTS_URL`` signed with ``REFUNDRY_EVENTS_SECRET`` (a receiver verifying with the
official library applies each event once), and an unusable secret stops the command at
start by name (exit 4) without printing it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ledger import open_ledger
from tests.support.commands import RefundryProcess, clean_env, refundry
from tests.support.event_receiver import EventReceiver
from tests.support.waiting import wait_until

SECRET = "whsec_" + base64.b64encode(b"cli-events-out-secret-of-32-byte").decode()


def _two_effects(env: dict[str, str]) -> None:
    book = open_ledger(env["DATABASE_URL"], policy_version="t")
    try:
        book.grant(account_id="acct-cli", credits=50, idempotency_key="cli-1", reason="t")
        book.charge(
            generation_id="gen-cli",
            account_id="acct-cli",
            provider="kling",
            operation="video",
            credits=20,
        )
    finally:
        book.db.close()


def test_the_scheduler_delivers_events_as_they_are_written(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    _two_effects(env)
    with EventReceiver(SECRET) as receiver:
        env |= {"REFUNDRY_EVENTS_URL": receiver.url, "REFUNDRY_EVENTS_SECRET": SECRET}
        scheduler = RefundryProcess(env, tmp_path / "scheduler.log", "scheduler")
        scheduler.start()
        try:
            wait_until(lambda: receiver.received.balances == {"acct-cli": 30}, timeout=30)
            book = open_ledger(env["DATABASE_URL"], policy_version="t")
            try:
                book.grant(account_id="acct-cli", credits=5, idempotency_key="cli-2", reason="t")
            finally:
                book.db.close()
            wait_until(lambda: receiver.received.balances == {"acct-cli": 35}, timeout=10)
        finally:
            scheduler.stop()
    assert receiver.received.sequences == {"acct-cli": [1, 2, 3]}
    assert SECRET not in (tmp_path / "scheduler.log").read_text()


def test_sweep_delivers_the_outbox_signed(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    _two_effects(env)
    with EventReceiver(SECRET) as receiver:
        env |= {"REFUNDRY_EVENTS_URL": receiver.url, "REFUNDRY_EVENTS_SECRET": SECRET}
        swept = refundry(env, "sweep")
        assert swept.returncode == 0, swept.stderr
        assert json.loads(swept.stdout)["events_out"]["delivered"] == 2
        assert receiver.received.balances == {"acct-cli": 30}
        assert receiver.received.sequences == {"acct-cli": [1, 2]}
        again = refundry(env, "sweep")
        assert json.loads(again.stdout)["events_out"]["delivered"] == 0
    assert SECRET not in swept.stdout + swept.stderr


def test_an_unusable_events_secret_stops_the_command_by_name(tmp_path: Path) -> None:
    short = "whsec_" + base64.b64encode(b"too-short").decode()
    env = clean_env(
        tmp_path, REFUNDRY_EVENTS_URL="https://platform.example/e", REFUNDRY_EVENTS_SECRET=short
    )
    refused = refundry(env, "sweep")
    assert refused.returncode == 4
    assert "REFUNDRY_EVENTS_SECRET" in refused.stderr
    assert short.removeprefix("whsec_") not in refused.stdout + refused.stderr
