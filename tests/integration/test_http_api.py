"""The pipeline HTTP API through a real ``refundry web`` (uvicorn) and real workers, on SQLite
and PostgreSQL: every route, keys refused and rotated, idempotent replays, problem details
for bad input, and generation receipts (waiting, refunded, succeeded). Every answer is
checked against the schema the server's own OpenAPI document gives it."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from ledger.api_idempotency import ApiIdempotency, Claimed
from ledger.backends import open_database
from tests.support.api import KEY_NEW, KEY_OLD, MAX_BODY_BYTES, Api, run_api, schema_validator
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until
from workers.demo_payloads import demo_payload

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
) -> Iterator[Api]:
    yield from run_api(request, tmp_path_factory.mktemp(f"api-{request.param}"), redis_server)


@pytest.fixture(scope="module")
def document(api: Api) -> dict[str, Any]:
    answer = api.get("/v1/openapi.json", key=None)
    assert answer.status_code == 200
    doc: dict[str, Any] = answer.json()
    return doc


def _valid(document: dict[str, Any], answer: httpx.Response, schema: str) -> dict[str, Any]:
    """The answer's JSON, after checking it against ``schema`` of the OpenAPI document."""
    body: dict[str, Any] = answer.json()
    schema_validator(document, schema).validate(body)
    return body


def _problem(
    document: dict[str, Any], answer: httpx.Response, status: int, name: str
) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body = _valid(document, answer, "Problem")
    assert body["type"] == f"urn:refundry:problem:{name}", body
    assert body["status"] == status
    return body


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _grant(api: Api, account: str, credits: int) -> None:
    key = _id("grant")
    answer = api.post(
        "/v1/grants",
        {"account_id": account, "credits": credits, "idempotency_key": key, "reason": "top-up"},
    )
    assert answer.status_code == 200, answer.text


def _charge_body(account: str, credits: int = 40) -> dict[str, Any]:
    return {
        "generation_id": _id("gen"),
        "account_id": account,
        "provider": "fal",
        "operation": "video",
        "credits": credits,
        "provider_job_id": str(uuid.uuid4()),
    }


def _balance(api: Api, account: str) -> int:
    answer = api.get(f"/v1/accounts/{account}/balance")
    assert answer.status_code == 200, answer.text
    return int(answer.json()["balance"])


# -- every route ---------------------------------------------------------------------------


def test_a_generation_charged_and_failed_through_the_api_is_refunded_and_its_receipt_says_so(
    api: Api, document: dict[str, Any]
) -> None:
    account = _id("acct")
    grant = {"account_id": account, "credits": 100, "idempotency_key": _id("k"), "reason": "pack"}
    granted = _valid(document, api.post("/v1/grants", grant), "Grant")
    assert granted["balance"] == 100
    charge = _charge_body(account)
    charged = api.post("/v1/charges", charge)
    assert charged.status_code == 200, charged.text
    assert _valid(document, charged, "Charge")["balance"] == 60
    assert _valid(document, api.get(f"/v1/accounts/{account}/balance"), "Balance") == {
        "account_id": account,
        "balance": 60,
    }

    waiting = _valid(document, api.get(f"/v1/generations/{charge['generation_id']}"), "Receipt")
    assert waiting["status"] == "waiting"
    assert waiting["charge"]["credits"] == 40
    assert waiting["refund"] is None and waiting["outcome"] is None
    assert waiting["refund_deadline"] is not None
    assert waiting["refund_deadline"] > waiting["charge"]["charged_at"]
    assert waiting["policy_version"]

    payload = demo_payload("fal", charge["provider_job_id"], "failed")
    kept = api.post("/v1/results", {"provider": "fal", "payload": payload, "operation": "video"})
    assert kept.status_code == 202, kept.text
    assert _valid(document, kept, "ResultKept")["kept"] is True

    def refunded() -> dict[str, Any] | None:
        receipt = api.get(f"/v1/generations/{charge['generation_id']}").json()
        return receipt if receipt["status"] == "refunded" else None

    receipt = wait_until(refunded, timeout=30, message="the failed generation was not refunded")
    _valid(document, api.get(f"/v1/generations/{charge['generation_id']}"), "Receipt")
    assert receipt["refund"]["credits"] == 40
    assert receipt["refund"]["refunded_at"] >= receipt["charge"]["charged_at"]
    assert receipt["outcome"]["outcome"] == "failed"
    assert receipt["refund_deadline"] is None
    assert receipt["policy_version"] == waiting["policy_version"]
    assert _balance(api, account) == 100


def test_a_succeeded_generation_keeps_its_credits_and_its_receipt_shows_the_outcome(
    api: Api, document: dict[str, Any]
) -> None:
    account = _id("acct")
    _grant(api, account, 50)
    charge = _charge_body(account, credits=30)
    assert api.post("/v1/charges", charge).status_code == 200
    payload = demo_payload("fal", charge["provider_job_id"], "succeeded")
    assert api.post("/v1/results", {"provider": "fal", "payload": payload}).status_code == 202

    def settled() -> dict[str, Any] | None:
        receipt = api.get(f"/v1/generations/{charge['generation_id']}").json()
        return receipt if receipt["status"] != "waiting" else None

    receipt = wait_until(settled, timeout=30, message="the success was not applied")
    _valid(document, api.get(f"/v1/generations/{charge['generation_id']}"), "Receipt")
    assert receipt["status"] == "kept"
    assert receipt["outcome"]["outcome"] == "succeeded"
    assert receipt["refund"] is None and receipt["refund_deadline"] is None
    assert _balance(api, account) == 20


def test_an_account_never_seen_has_a_balance_of_zero_and_ids_with_a_slash_are_found(
    api: Api, document: dict[str, Any]
) -> None:
    assert _balance(api, _id("nobody")) == 0
    account = _id("org/acct")
    _grant(api, account, 7)
    encoded = account.replace("/", "%2F")
    assert _valid(document, api.get(f"/v1/accounts/{encoded}/balance"), "Balance") == {
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
    account = _id("acct")
    body = {"account_id": account, "credits": 5, "idempotency_key": "k", "reason": "r"}
    answer = api.request(method, path, body if method == "POST" else None, key=key)
    _problem(document, answer, 401, "unauthorized")
    assert answer.headers["www-authenticate"].lower().startswith("bearer")
    assert _balance(api, account) == 0


def test_both_keys_of_a_rotation_are_accepted(api: Api) -> None:
    account = _id("acct")
    for key in (KEY_OLD, KEY_NEW):
        grant = {"account_id": account, "credits": 5, "idempotency_key": key[:7], "reason": "r"}
        assert api.post("/v1/grants", grant, key=key).status_code == 200
    assert _balance(api, account) == 10


def test_no_key_reaches_the_logs(api: Api) -> None:
    api.get("/v1/accounts/x/balance", key=KEY_NEW)
    api.get("/v1/accounts/x/balance", key="rfd-wrong-0123456789abcdef01234567")
    log = api.web.log.read_text(errors="replace")
    assert KEY_OLD not in log and KEY_NEW not in log and "rfd-wrong" not in log


# -- idempotency keys ----------------------------------------------------------------------


def test_the_same_key_and_body_get_the_first_answer_again_marked_as_a_replay(
    api: Api, document: dict[str, Any]
) -> None:
    account = _id("acct")
    _grant(api, account, 100)
    charge = _charge_body(account, credits=10)
    key = _id("idem")
    first = api.post("/v1/charges", charge, idempotency_key=key)
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    _grant(api, account, 1)  # the balance moves: a replay still answers the first balance
    # The same body written otherwise (key order, spacing) is the same request.
    reordered = json.dumps(dict(reversed(list(charge.items()))), indent=2).encode()
    again = api.post("/v1/charges", None, idempotency_key=key, content=reordered)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() == _valid(document, again, "Charge")
    assert _balance(api, account) == 91


def test_the_same_key_with_another_body_is_409_and_changes_nothing(
    api: Api, document: dict[str, Any]
) -> None:
    account = _id("acct")
    _grant(api, account, 100)
    key = _id("idem")
    charge = _charge_body(account, credits=10)
    assert api.post("/v1/charges", charge, idempotency_key=key).status_code == 200
    other = _charge_body(account, credits=20)
    refused = api.post("/v1/charges", other, idempotency_key=key)
    assert _problem(document, refused, 409, "idempotency-key-reused")["field"] == "Idempotency-Key"
    assert api.get(f"/v1/generations/{other['generation_id']}").status_code == 404
    # Another route under the same key is another request too.
    grant = {"account_id": account, "credits": 1, "idempotency_key": "g", "reason": "r"}
    _problem(
        document, api.post("/v1/grants", grant, idempotency_key=key), 409, "idempotency-key-reused"
    )
    assert _balance(api, account) == 90


def test_idempotency_keys_are_scoped_per_api_key(api: Api) -> None:
    account = _id("acct")
    _grant(api, account, 100)
    key = _id("idem")
    assert (
        api.post("/v1/charges", _charge_body(account, 10), idempotency_key=key).status_code == 200
    )
    other = api.post("/v1/charges", _charge_body(account, 20), idempotency_key=key, key=KEY_NEW)
    assert other.status_code == 200 and "idempotent-replayed" not in other.headers
    assert _balance(api, account) == 70


def test_a_request_still_in_flight_under_the_key_is_409_with_retry_after(
    api: Api, document: dict[str, Any]
) -> None:
    key = _id("idem")
    account = _id("acct")
    body = {"account_id": account, "credits": 3, "idempotency_key": "g1", "reason": "r"}
    scope = hashlib.sha256(KEY_OLD.encode()).hexdigest()  # the scope of this API key
    db = open_database(api.env["DATABASE_URL"])
    try:  # another web process holds the key: its request is being answered
        held = ApiIdempotency(db).claim(scope=scope, key=key, fingerprint="its request")
        assert isinstance(held, Claimed)
        answer = api.post("/v1/grants", body, idempotency_key=key)
        _problem(document, answer, 409, "idempotency-key-in-use")
        assert answer.headers["retry-after"] == "1"
        assert _balance(api, account) == 0
        ApiIdempotency(db).release(held)  # it ran nothing after all
    finally:
        db.close()
    assert api.post("/v1/grants", body, idempotency_key=key).status_code == 200
    assert _balance(api, account) == 3


def test_a_ledger_refusal_is_kept_under_its_key_and_refused_input_is_not(
    api: Api, document: dict[str, Any]
) -> None:
    account = _id("acct")
    _grant(api, account, 5)
    charge = _charge_body(account, credits=10)
    key = _id("idem")
    poor = api.post("/v1/charges", charge, idempotency_key=key)
    assert _problem(document, poor, 409, "insufficient-credits")["error"] == "InsufficientCredits"
    _grant(api, account, 100)
    replayed = api.post("/v1/charges", charge, idempotency_key=key)
    assert replayed.status_code == 409 and replayed.headers["idempotent-replayed"] == "true"
    # Refused input ran nothing: the same key with the body corrected runs.
    fixed_key = _id("idem")
    bad = dict(charge, credits="10")
    _problem(
        document, api.post("/v1/charges", bad, idempotency_key=fixed_key), 422, "invalid-input"
    )
    assert api.post("/v1/charges", charge, idempotency_key=fixed_key).status_code == 200
    assert _balance(api, account) == 95


def test_an_idempotency_key_breaking_the_id_rule_is_400(api: Api, document: dict[str, Any]) -> None:
    account = _id("acct")
    grant = {"account_id": account, "credits": 5, "idempotency_key": "k", "reason": "r"}
    for bad in ("tab\tinside", "x" * 256, "zero\u200bwidth"):
        answer = api.web.http.post(
            "/v1/grants",
            json=grant,
            headers={
                b"authorization": f"Bearer {KEY_OLD}".encode(),
                b"idempotency-key": bad.encode(),
            },
        )
        _problem(document, answer, 400, "invalid-idempotency-key")
    assert _balance(api, account) == 0


# -- problem details -----------------------------------------------------------------------


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
    account = _id("acct")
    _grant(api, account, 100)
    body = _charge_body(account) | change
    problem = _problem(document, api.post("/v1/charges", body), 422, "invalid-input")
    assert (problem["field"], problem["error"]) == (field, error)
    assert _balance(api, account) == 100


def test_a_missing_field_is_422_naming_it(api: Api, document: dict[str, Any]) -> None:
    body = _charge_body(_id("acct"))
    del body["operation"]
    assert _problem(document, api.post("/v1/charges", body), 422, "invalid-input")["field"] == (
        "operation"
    )
    result = {"provider": "fal", "payload": "not an object"}
    problem = _problem(document, api.post("/v1/results", result), 422, "invalid-input")
    assert (problem["field"], problem["error"]) == ("payload", "InvalidPayload")


@pytest.mark.parametrize(
    "content",
    [b"{", b"[1, 2]", b'{"credits": NaN}', b"\xff\xfe", b"", b'{"a": 1}{"b": 2}', b"1" * 200],
)
def test_a_body_that_is_not_a_json_object_is_400(
    api: Api, document: dict[str, Any], content: bytes
) -> None:
    answer = api.post("/v1/grants", None, content=content)
    assert _problem(document, answer, 400, "malformed-body")["field"] == "body"


def test_a_body_nested_past_the_payload_rule_is_400(api: Api, document: dict[str, Any]) -> None:
    deep: Any = {}
    for _ in range(40):
        deep = {"d": deep}
    answer = api.post("/v1/results", {"provider": "fal", "payload": deep})
    _problem(document, answer, 400, "malformed-body")


def test_a_body_over_the_size_limit_is_413(api: Api, document: dict[str, Any]) -> None:
    big = {"provider": "fal", "payload": {"x": "a" * MAX_BODY_BYTES}}
    _problem(document, api.post("/v1/results", big), 413, "body-too-large")


def test_a_body_not_sent_as_json_is_415(api: Api, document: dict[str, Any]) -> None:
    grant = {"account_id": _id("a"), "credits": 1, "idempotency_key": "k", "reason": "r"}
    for media in ("text/plain", "application/x-www-form-urlencoded", ""):
        answer = api.post("/v1/grants", grant, headers={"content-type": media})
        _problem(document, answer, 415, "unsupported-media-type")
    charset = api.post(
        "/v1/grants", grant, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert charset.status_code == 200


def test_unknown_generations_paths_and_methods_are_problems(
    api: Api, document: dict[str, Any]
) -> None:
    _problem(document, api.get(f"/v1/generations/{_id('never')}"), 404, "not-found")
    _problem(document, api.get("/v1/nothing"), 404, "not-found")
    _problem(document, api.get("/v1/charges/"), 404, "not-found")
    wrong = api.request("DELETE", "/v1/charges")
    _problem(document, wrong, 405, "method-not-allowed")
    assert "POST" in wrong.headers["allow"]
    bad_id = api.get("/v1/generations/%E2%80%8Bgen")
    assert _problem(document, bad_id, 422, "invalid-input")["field"] == "generation_id"


def test_a_grant_key_reused_with_other_inputs_is_409(api: Api, document: dict[str, Any]) -> None:
    account = _id("acct")
    key = _id("grant")
    body = {"account_id": account, "credits": 5, "idempotency_key": key, "reason": "r"}
    assert api.post("/v1/grants", body).status_code == 200
    assert api.post("/v1/grants", body).json()["balance"] == 5  # a replay of the grant itself
    problem = _problem(document, api.post("/v1/grants", body | {"credits": 6}), 409, "conflict")
    assert problem["error"] == "IdempotencyConflict"
    assert _balance(api, account) == 5


def test_concurrent_requests_under_one_key_charge_once(api: Api, document: dict[str, Any]) -> None:
    account = _id("acct")
    _grant(api, account, 100)
    charge = _charge_body(account, credits=10)
    key = _id("idem")

    def send(_: int) -> httpx.Response:
        return api.post("/v1/charges", charge, idempotency_key=key)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(8)))
    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) <= {200, 409}, statuses
    first = [a for a in answers if a.status_code == 200 and "idempotent-replayed" not in a.headers]
    assert len(first) == 1, [(a.status_code, dict(a.headers)) for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            _problem(document, answer, 409, "idempotency-key-in-use")
        else:
            assert answer.json() == first[0].json()
    assert _balance(api, account) == 90
