"""Every route of the pipeline HTTP API through a real ``refundry web`` and real workers, on
SQLite and PostgreSQL: charges, grants, balances and results, the receipts of refunded,
waiting and succeeded generations, and API keys refused, rotated and never logged."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import (
    KEY_NEW,
    KEY_OLD,
    Api,
    balance,
    charge_body,
    grant,
    new_id,
    problem,
    valid,
)
from tests.support.waiting import wait_until
from workers.demo_payloads import demo_payload

# -- every route ---------------------------------------------------------------------------


def test_a_generation_charged_and_failed_through_the_api_is_refunded_and_its_receipt_says_so(
    api: Api, document: dict[str, Any]
) -> None:
    account = new_id("acct")
    grant_body = {
        "account_id": account,
        "credits": 100,
        "idempotency_key": new_id("k"),
        "reason": "pack",
    }
    granted = valid(document, api.post("/v1/grants", grant_body), "Grant")
    assert granted["balance"] == 100
    charge = charge_body(account)
    charged = api.post("/v1/charges", charge)
    assert charged.status_code == 200, charged.text
    assert valid(document, charged, "Charge")["balance"] == 60
    assert valid(document, api.get(f"/v1/accounts/{account}/balance"), "Balance") == {
        "account_id": account,
        "balance": 60,
    }

    waiting = valid(document, api.get(f"/v1/generations/{charge['generation_id']}"), "Receipt")
    assert waiting["status"] == "waiting"
    assert waiting["charge"]["credits"] == 40
    assert waiting["refund"] is None and waiting["outcome"] is None
    assert waiting["refund_deadline"] is not None
    assert waiting["refund_deadline"] > waiting["charge"]["charged_at"]
    assert waiting["policy_version"]

    payload = demo_payload("fal", charge["provider_job_id"], "failed")
    kept = api.post("/v1/results", {"provider": "fal", "payload": payload, "operation": "video"})
    assert kept.status_code == 202, kept.text
    assert valid(document, kept, "ResultKept")["kept"] is True

    def refunded() -> dict[str, Any] | None:
        receipt = api.get(f"/v1/generations/{charge['generation_id']}").json()
        return receipt if receipt["status"] == "refunded" else None

    receipt = wait_until(refunded, timeout=30, message="the failed generation was not refunded")
    valid(document, api.get(f"/v1/generations/{charge['generation_id']}"), "Receipt")
    assert receipt["refund"]["credits"] == 40
    assert receipt["refund"]["refunded_at"] >= receipt["charge"]["charged_at"]
    assert receipt["outcome"]["outcome"] == "failed"
    assert receipt["refund_deadline"] is None
    assert receipt["policy_version"] == waiting["policy_version"]
    assert balance(api, account) == 100


def test_a_succeeded_generation_keeps_its_credits_and_its_receipt_shows_the_outcome(
    api: Api, document: dict[str, Any]
) -> None:
    account = new_id("acct")
    grant(api, account, 50)
    charge = charge_body(account, credits=30)
    assert api.post("/v1/charges", charge).status_code == 200
    payload = demo_payload("fal", charge["provider_job_id"], "succeeded")
    assert api.post("/v1/results", {"provider": "fal", "payload": payload}).status_code == 202

    def settled() -> dict[str, Any] | None:
        receipt = api.get(f"/v1/generations/{charge['generation_id']}").json()
        return receipt if receipt["status"] != "waiting" else None

    receipt = wait_until(settled, timeout=30, message="the success was not applied")
    valid(document, api.get(f"/v1/generations/{charge['generation_id']}"), "Receipt")
    assert receipt["status"] == "kept"
    assert receipt["outcome"]["outcome"] == "succeeded"
    assert receipt["refund"] is None and receipt["refund_deadline"] is None
    assert balance(api, account) == 20


def test_an_account_never_seen_has_a_balance_of_zero_and_ids_with_a_slash_are_found(
    api: Api, document: dict[str, Any]
) -> None:
    assert balance(api, new_id("nobody")) == 0
    account = new_id("org/acct")
    grant(api, account, 7)
    encoded = account.replace("/", "%2F")
    assert valid(document, api.get(f"/v1/accounts/{encoded}/balance"), "Balance") == {
        "account_id": account,
        "balance": 7,
    }


# -- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/charges"),
        ("POST", "/v1/results"),
        ("POST", "/v1/grants"),
        ("GET", "/v1/accounts/a/balance"),
        ("GET", "/v1/generations/g"),
    ],
)
@pytest.mark.parametrize("key", [None, "rfd-wrong-0123456789abcdef01234567", KEY_OLD[:-1]])
def test_every_route_refuses_a_request_without_a_valid_key(
    api: Api, document: dict[str, Any], method: str, path: str, key: str | None
) -> None:
    account = new_id("acct")
    body = {"account_id": account, "credits": 5, "idempotency_key": "k", "reason": "r"}
    answer = api.request(method, path, body if method == "POST" else None, key=key)
    problem(document, answer, 401, "unauthorized")
    assert answer.headers["www-authenticate"].lower().startswith("bearer")
    assert balance(api, account) == 0


def test_both_keys_of_a_rotation_are_accepted(api: Api) -> None:
    account = new_id("acct")
    for key in (KEY_OLD, KEY_NEW):
        grant_body = {
            "account_id": account,
            "credits": 5,
            "idempotency_key": key[:7],
            "reason": "r",
        }
        assert api.post("/v1/grants", grant_body, key=key).status_code == 200
    assert balance(api, account) == 10


def test_no_key_reaches_the_logs(api: Api) -> None:
    api.get("/v1/accounts/x/balance", key=KEY_NEW)
    api.get("/v1/accounts/x/balance", key="rfd-wrong-0123456789abcdef01234567")
    log = api.web.log.read_text(errors="replace")
    assert KEY_OLD not in log and KEY_NEW not in log and "rfd-wrong" not in log


def test_answers_are_counted_by_operation_and_status_on_metrics(api: Api) -> None:
    def count(operation: str, status: int) -> float:
        wanted = f'refundry_api_requests_total{{operation="{operation}",status="{status}"}} '
        for line in api.web.http.get("/metrics").text.splitlines():
            if line.startswith(wanted):
                return float(line.removeprefix(wanted))
        return 0.0

    before = count("getBalance", 200), count("getBalance", 401)
    balance(api, new_id("acct"))
    api.get("/v1/accounts/a/balance", key=None)
    assert (count("getBalance", 200), count("getBalance", 401)) == (before[0] + 1, before[1] + 1)
