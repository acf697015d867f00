"""Bad input through the real server: RFC 9457 problem details naming the field, by the same
rules as ``workers.client`` and the ingress (body size, JSON, media type), and nothing stored."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import (
    KEY_NEW,
    KEY_OLD,
    MAX_BODY_BYTES,
    PROBLEM,
    Api,
    balance,
    charge_body,
    grant,
    new_id,
    problem,
)

# -- problem details ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        ({"credits": "40"}, "credits", "InvalidAmount"),
        ({"credits": 1.5}, "credits", "InvalidAmount"),
        ({"credits": True}, "credits", "InvalidAmount"),
        ({"credits": 0}, "credits", "InvalidAmount"),
        ({"provider": "dalle"}, "provider", "UnknownProvider"),
        ({"operation": "poem"}, "operation", "UnknownOperation"),
        ({"generation_id": " gen"}, "generation_id", "InvalidIdentifier"),
        ({"generation_id": "cafe\u0301"}, "generation_id", "InvalidIdentifier"),
        ({"account_id": ""}, "account_id", "InvalidIdentifier"),
        ({"provider_job_id": "job/../x"}, "provider_job_id", "InvalidIdentifier"),
        ({"colour": "blue"}, "colour", "InvalidInput"),
        ({"credits": None}, "credits", "InvalidAmount"),
    ],
)
def test_a_charge_breaking_a_rule_is_422_naming_the_field_and_stores_nothing(
    api: Api, document: dict[str, Any], change: dict[str, Any], field: str, error: str
) -> None:
    account = new_id("acct")
    grant(api, account, 100)
    body = charge_body(account) | change
    refusal = problem(document, api.post("/v1/charges", body), 422, "invalid-input")
    assert (refusal["field"], refusal["error"]) == (field, error)
    assert balance(api, account) == 100


def test_a_missing_field_is_422_naming_it(api: Api, document: dict[str, Any]) -> None:
    body = charge_body(new_id("acct"))
    del body["operation"]
    assert problem(document, api.post("/v1/charges", body), 422, "invalid-input")["field"] == (
        "operation"
    )
    result = {"provider": "fal", "payload": "not an object"}
    refusal = problem(document, api.post("/v1/results", result), 422, "invalid-input")
    assert (refusal["field"], refusal["error"]) == ("payload", "InvalidPayload")


@pytest.mark.parametrize(
    "content",
    [b"{", b"[1, 2]", b'{"credits": NaN}', b"\xff\xfe", b"", b'{"a": 1}{"b": 2}', b"1" * 200],
)
def test_a_body_that_is_not_a_json_object_is_400(
    api: Api, document: dict[str, Any], content: bytes
) -> None:
    answer = api.post("/v1/grants", None, content=content)
    assert problem(document, answer, 400, "malformed-body")["field"] == "body"


def test_a_body_nested_past_the_payload_rule_is_400(api: Api, document: dict[str, Any]) -> None:
    deep: Any = {}
    for _ in range(40):
        deep = {"d": deep}
    answer = api.post("/v1/results", {"provider": "fal", "payload": deep})
    problem(document, answer, 400, "malformed-body")


def test_a_body_over_the_size_limit_is_413(api: Api, document: dict[str, Any]) -> None:
    big = {"provider": "fal", "payload": {"x": "a" * MAX_BODY_BYTES}}
    problem(document, api.post("/v1/results", big), 413, "body-too-large")


def test_a_body_not_sent_as_json_is_415(api: Api, document: dict[str, Any]) -> None:
    grant_body = {"account_id": new_id("a"), "credits": 1, "idempotency_key": "k", "reason": "r"}
    for media in ("text/plain", "application/x-www-form-urlencoded", ""):
        answer = api.post("/v1/grants", grant_body, headers={"content-type": media})
        problem(document, answer, 415, "unsupported-media-type")
    charset = api.post(
        "/v1/grants", grant_body, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert charset.status_code == 200


def test_unknown_generations_paths_and_methods_are_problems(
    api: Api, document: dict[str, Any]
) -> None:
    problem(document, api.get(f"/v1/generations/{new_id('never')}"), 404, "not-found")
    problem(document, api.get("/v1/nothing"), 404, "not-found")
    problem(document, api.get("/v1/charges/"), 404, "not-found")
    for outside in ("/v1", "/V1/charges", "/v1X"):
        answer = api.get(outside)
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith(PROBLEM) == (outside != "/v1X")
    wrong = api.request("DELETE", "/v1/charges")
    problem(document, wrong, 405, "method-not-allowed")
    assert "POST" in wrong.headers["allow"]
    for path in ("/v1/generations/a%0Ab", "/v1/accounts/x%0A/balance"):  # found by fuzzing
        refused = problem(document, api.get(path), 422, "invalid-input")
        assert refused["error"] == "InvalidIdentifier"
    bad_id = api.get("/v1/generations/%E2%80%8Bgen")
    assert problem(document, bad_id, 422, "invalid-input")["field"] == "generation_id"


@pytest.mark.parametrize(
    "content",
    [
        b'{"account_id": "a", "account_id": "b", "credits": 1, "idempotency_key": "k",'
        b' "reason": "r"}',
        b'{"provider": "fal", "payload": {"status": "OK", "status": "ERROR"}}',
    ],
)
def test_a_body_holding_a_member_name_twice_is_400(
    api: Api, document: dict[str, Any], content: bytes
) -> None:
    answer = api.post("/v1/grants", None, content=content)
    assert problem(document, answer, 400, "malformed-body")["field"] == "body"


@pytest.mark.parametrize("path", ["/v1/accounts/%ff/balance", "/v1/generations/a%fe%ffb"])
def test_a_path_id_that_is_not_utf8_is_422(api: Api, document: dict[str, Any], path: str) -> None:
    refused = problem(document, api.get(path), 422, "invalid-input")
    assert refused["error"] == "InvalidIdentifier"


def test_a_header_sent_twice_is_400_and_bearer_takes_one_or_more_spaces(
    api: Api, document: dict[str, Any]
) -> None:
    path = f"/v1/accounts/{new_id('acct')}/balance"
    spaced = api.get(path, key=None, headers={"authorization": f"Bearer   {KEY_OLD}"})
    assert spaced.status_code == 200, spaced.text
    auth = ("authorization", f"Bearer {KEY_OLD}")
    twice = api.web.http.get(path, headers=[auth, ("authorization", f"Bearer {KEY_NEW}")])
    assert problem(document, twice, 400, "repeated-header")["field"] == "Authorization"
    body = {"account_id": new_id("a"), "credits": 1, "idempotency_key": new_id("k"), "reason": "r"}
    keys = [auth, ("idempotency-key", "k1"), ("idempotency-key", "k2")]
    answer = api.web.http.post("/v1/grants", json=body, headers=keys)
    assert problem(document, answer, 400, "repeated-header")["field"] == "Idempotency-Key"
