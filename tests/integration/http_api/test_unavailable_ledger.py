"""The API answers 200 only for what the ledger committed: a request that cannot be answered
within ``REFUNDRY_INGRESS_DEADLINE_S`` (the ledger locked) is 503 and finishes on its own,
after which a retry under its ``Idempotency-Key`` gets its answer, once; a ledger that is
gone is 503 for every request, and nothing is kept under the key."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import KEY_OLD, charge_body, new_id
from tests.support.ingress import IngressServer, base_env, start
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

AUTH = {"authorization": f"Bearer {KEY_OLD}"}


@pytest.fixture
def web(tmp_path: Path, redis_server: RedisServer) -> Iterator[IngressServer]:
    env = base_env(tmp_path, redis_server) | {
        "REFUNDRY_API_KEYS": KEY_OLD,
        "REFUNDRY_INGRESS_DEADLINE_S": "1",
    }
    server = start(env, tmp_path)
    server.ledger_file = tmp_path / "ledger.sqlite3"  # type: ignore[attr-defined]
    yield server
    server.close()


def _grant(web: IngressServer, account: str, key: str) -> httpx.Response:
    body = {"account_id": account, "credits": 7, "idempotency_key": "g1", "reason": "r"}
    return web.http.post("/v1/grants", json=body, headers=AUTH | {"idempotency-key": key})


def _balance(web: IngressServer, account: str) -> httpx.Response:
    return web.http.get(f"/v1/accounts/{account}/balance", headers=AUTH)


def test_a_request_past_its_deadline_is_503_then_its_answer_is_replayed_once(
    web: IngressServer,
) -> None:
    account, key = new_id("acct"), new_id("idem")
    lock = sqlite3.connect(web.ledger_file, isolation_level=None)  # type: ignore[attr-defined]
    try:
        lock.execute("BEGIN IMMEDIATE")  # another writer holds the ledger
        late = _grant(web, account, key)
        assert late.status_code == 503, late.text
        assert late.headers["content-type"].startswith("application/problem+json")
        assert late.json()["type"] == "urn:refundry:problem:unavailable"
        assert late.headers["retry-after"] == "1"
    finally:
        lock.rollback()
        lock.close()

    # Nobody retries: the late request finishes on its own once the ledger is free.
    wait_until(
        lambda: _balance(web, account).json()["balance"] == 7,
        timeout=20,
        message="the late request never finished",
    )

    def replayed() -> httpx.Response | None:  # 409 in flight until it has kept its answer
        answer = _grant(web, account, key)
        assert answer.status_code in (200, 409), answer.text
        return answer if answer.status_code == 200 else None

    replay = wait_until(replayed, timeout=20, message="the late answer was never kept")
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["balance"] == 7
    assert _balance(web, account).json()["balance"] == 7


def test_a_ledger_that_is_gone_is_503_and_keeps_nothing_under_the_key(
    web: IngressServer,
) -> None:
    account, key = new_id("acct"), new_id("idem")
    web.ledger_file.rename(web.ledger_file.with_suffix(".moved"))  # type: ignore[attr-defined]
    for answer in (_grant(web, account, key), _grant(web, account, key), _balance(web, account)):
        assert answer.status_code == 503, answer.text
        assert answer.json()["type"] == "urn:refundry:problem:unavailable"
        assert answer.json()["error"] == "LedgerUnavailable"
        assert "idempotent-replayed" not in answer.headers


def test_a_charge_past_its_deadline_says_it_may_complete_and_its_retry_charges_once(
    web: IngressServer,
) -> None:
    account, key = new_id("acct"), new_id("idem")
    top_up = {"account_id": account, "credits": 100, "idempotency_key": "g", "reason": "r"}
    assert web.http.post("/v1/grants", json=top_up, headers=AUTH).status_code == 200
    body = charge_body(account, credits=40)
    headers = AUTH | {"idempotency-key": key}
    lock = sqlite3.connect(web.ledger_file, isolation_level=None)  # type: ignore[attr-defined]
    try:
        lock.execute("BEGIN IMMEDIATE")
        late = web.http.post("/v1/charges", json=body, headers=headers)
        assert late.status_code == 503, late.text
        detail = late.json()["detail"]
        # Never "ran nothing": the client must retry this very request, not a changed one.
        assert "may still complete" in detail, detail
        assert "same body under the same Idempotency-Key" in detail, detail
    finally:
        lock.rollback()
        lock.close()

    def replayed() -> httpx.Response | None:  # 409 in flight until it has kept its answer
        answer = web.http.post("/v1/charges", json=body, headers=headers)
        assert answer.status_code in (200, 409), answer.text
        return answer if answer.status_code == 200 else None

    first = wait_until(replayed, timeout=20, message="the late charge was never answered")
    again = web.http.post("/v1/charges", json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["balance"] == again.json()["balance"] == 60
    assert _balance(web, account).json()["balance"] == 60  # charged once
