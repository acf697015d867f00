"""A long-running ``refundry web`` started before a policy version takes effect charges
under that version once it is in force: its deadline, its charge mode, its name on the
charge entry and the receipt (never the version in force when the process started)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from ledger.clock import now_ms
from tests.support.api import KEY_OLD, charge_body, new_id
from tests.support.ingress import base_env, start
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

AUTH = {"authorization": f"Bearer {KEY_OLD}"}
LATER_S = 15
"""How long after the test starts the new version takes effect: the web process must be up
before (checked), on a loaded machine too."""


def _policy(effective_ms: int) -> str:
    when = datetime.fromtimestamp(effective_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return f"""\
[[version]]
name = "old"
effective = 1970-01-01T00:00:00Z
charge_mode = "debit"

[version.deadlines]
"fal:video" = [2, 10]

[[version]]
name = "new"
effective = {when}
charge_mode = "hold"

[version.deadlines]
"fal:video" = [5, 20]
"""


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_a_web_process_started_before_a_version_charges_under_it_once_in_force(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    effective_ms = now_ms() + LATER_S * 1000
    policy = tmp_path / "policy.toml"
    policy.write_text(_policy(effective_ms))
    env = base_env(tmp_path, redis_server) | {
        "REFUNDRY_API_KEYS": KEY_OLD,
        "REFUNDRY_POLICY": str(policy),
    }
    web = start(env, tmp_path)
    try:
        account = new_id("acct")
        body = {"account_id": account, "credits": 100, "idempotency_key": "g", "reason": "r"}
        assert web.http.post("/v1/grants", json=body, headers=AUTH).status_code == 200
        assert now_ms() < effective_ms, "the web process must start before the new version"
        wait_until(lambda: now_ms() >= effective_ms, timeout=LATER_S + 5.0)

        charge = charge_body(account)
        charged = web.http.post("/v1/charges", json=charge, headers=AUTH)
        assert charged.status_code == 200, charged.text
        receipt = web.http.get(f"/v1/generations/{charge['generation_id']}", headers=AUTH)
        assert receipt.status_code == 200, receipt.text
        shown = receipt.json()
    finally:
        web.close()

    assert shown["policy_version"] == "new"
    charged_at = _ms(shown["charge"]["charged_at"])
    assert _ms(shown["refund_deadline"]) - charged_at == 20_000  # the new version's, not 10 s
    ledger = sqlite3.connect(tmp_path / "ledger.sqlite3")
    try:
        charges = ledger.execute(
            "SELECT count(*) FROM entries WHERE generation_id = ?", (charge["generation_id"],)
        ).fetchone()
    finally:
        ledger.close()
    assert charges == (0,)  # charged by a hold (the new version's mode), no entry until settled
