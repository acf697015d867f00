"""``Idempotency-Key`` through the real server, with Stripe's semantics: the same key and body
get the first answer again (marked as a replay), another body or route is 409, a request in
flight is 409, keys are scoped per API key, and only requests that ran are kept."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from ledger.api_idempotency import ApiIdempotency, Claimed
from ledger.backends import open_database
from ledger.clock import now_ms
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
from workers.api import _fingerprint
from workers.api_routes import API_ROUTES

# -- idempotency keys ----------------------------------------------------------------------


def test_the_same_key_and_body_get_the_first_answer_again_marked_as_a_replay(
    api: Api, document: dict[str, Any]
) -> None:
    account = new_id("acct")
    grant(api, account, 100)
    charge = charge_body(account, credits=10)
    key = new_id("idem")
    first = api.post("/v1/charges", charge, idempotency_key=key)
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    grant(api, account, 1)  # the balance moves: a replay still answers the first balance
    # The same body written otherwise (key order, spacing) is the same request.
    reordered = json.dumps(dict(reversed(list(charge.items()))), indent=2).encode()
    again = api.post("/v1/charges", None, idempotency_key=key, content=reordered)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() == valid(document, again, "Charge")
    assert balance(api, account) == 91


def test_the_same_key_with_another_body_is_409_and_changes_nothing(
    api: Api, document: dict[str, Any]
) -> None:
    account = new_id("acct")
    grant(api, account, 100)
    key = new_id("idem")
    charge = charge_body(account, credits=10)
    assert api.post("/v1/charges", charge, idempotency_key=key).status_code == 200
    other = charge_body(account, credits=20)
    refused = api.post("/v1/charges", other, idempotency_key=key)
    assert problem(document, refused, 409, "idempotency-key-reused")["field"] == "Idempotency-Key"
    assert api.get(f"/v1/generations/{other['generation_id']}").status_code == 404
    # Another route under the same key is another request too.
    grant_body = {"account_id": account, "credits": 1, "idempotency_key": "g", "reason": "r"}
    problem(
        document,
        api.post("/v1/grants", grant_body, idempotency_key=key),
        409,
        "idempotency-key-reused",
    )
    assert balance(api, account) == 90


def test_idempotency_keys_are_scoped_per_api_key(api: Api) -> None:
    account = new_id("acct")
    grant(api, account, 100)
    key = new_id("idem")
    assert api.post("/v1/charges", charge_body(account, 10), idempotency_key=key).status_code == 200
    other = api.post("/v1/charges", charge_body(account, 20), idempotency_key=key, key=KEY_NEW)
    assert other.status_code == 200 and "idempotent-replayed" not in other.headers
    assert balance(api, account) == 70


def test_a_request_still_in_flight_under_the_key_is_409_with_retry_after(
    api: Api, document: dict[str, Any]
) -> None:
    key = new_id("idem")
    account = new_id("acct")
    body = {"account_id": account, "credits": 3, "idempotency_key": "g1", "reason": "r"}
    scope = hashlib.sha256(KEY_OLD.encode()).hexdigest()  # the scope of this API key
    db = open_database(api.env["DATABASE_URL"])
    try:  # another web process holds the key: its request is being answered
        held = ApiIdempotency(db).claim(scope=scope, key=key, fingerprint="its request")
        assert isinstance(held, Claimed)
        answer = api.post("/v1/grants", body, idempotency_key=key)
        problem(document, answer, 409, "idempotency-key-in-use")
        assert answer.headers["retry-after"] == "1"
        assert balance(api, account) == 0
        ApiIdempotency(db).release(held)  # it ran nothing after all
    finally:
        db.close()
    assert api.post("/v1/grants", body, idempotency_key=key).status_code == 200
    assert balance(api, account) == 3


def test_a_key_whose_request_died_with_its_process_runs_again_after_30_s(
    api: Api, document: dict[str, Any]
) -> None:
    key, account = new_id("idem"), new_id("acct")
    body = {"account_id": account, "credits": 3, "idempotency_key": new_id("g"), "reason": "r"}
    scope = hashlib.sha256(KEY_OLD.encode()).hexdigest()
    db = open_database(api.env["DATABASE_URL"])
    try:  # a web process claimed the key 31 s ago, then died: it never answers
        store = ApiIdempotency(db)
        assert isinstance(
            store.claim(scope=scope, key=key, fingerprint="x", at_ms=now_ms()), Claimed
        )
        grants = next(r for r in API_ROUTES if r.path == "/v1/grants")
        same = _fingerprint(grants, "/v1/grants", body)  # the very request, sent before
        dead = store.claim(
            scope=scope, key=new_id("idem"), fingerprint=same, at_ms=now_ms() - 31_000
        )
        assert isinstance(dead, Claimed)
        in_use = api.post("/v1/grants", body, idempotency_key=key)  # claimed just now: in use
        detail = problem(document, in_use, 409, "idempotency-key-in-use")["detail"]
        assert "``" not in detail  # plain text, no markup
        answer = api.post("/v1/grants", body, idempotency_key=dead.key)
    finally:
        db.close()
    assert answer.status_code == 200, answer.text
    assert balance(api, account) == 3


def test_a_ledger_refusal_is_kept_under_its_key_and_refused_input_is_not(
    api: Api, document: dict[str, Any]
) -> None:
    account = new_id("acct")
    grant(api, account, 5)
    charge = charge_body(account, credits=10)
    key = new_id("idem")
    poor = api.post("/v1/charges", charge, idempotency_key=key)
    assert problem(document, poor, 409, "insufficient-credits")["error"] == "InsufficientCredits"
    grant(api, account, 100)
    replayed = api.post("/v1/charges", charge, idempotency_key=key)
    assert replayed.status_code == 409 and replayed.headers["idempotent-replayed"] == "true"
    # Refused input ran nothing: the same key with the body corrected runs.
    fixed_key = new_id("idem")
    bad = dict(charge, credits="10")
    problem(document, api.post("/v1/charges", bad, idempotency_key=fixed_key), 422, "invalid-input")
    assert api.post("/v1/charges", charge, idempotency_key=fixed_key).status_code == 200
    assert balance(api, account) == 95


def test_an_idempotency_key_breaking_the_id_rule_is_400(api: Api, document: dict[str, Any]) -> None:
    account = new_id("acct")
    grant_body = {"account_id": account, "credits": 5, "idempotency_key": "k", "reason": "r"}
    for bad in ("tab\tinside", "x" * 256, "zero\u200bwidth"):
        answer = api.web.http.post(
            "/v1/grants",
            json=grant_body,
            headers={
                b"authorization": f"Bearer {KEY_OLD}".encode(),
                b"idempotency-key": bad.encode(),
            },
        )
        problem(document, answer, 400, "invalid-idempotency-key")
    assert balance(api, account) == 0


def test_a_grant_key_reused_with_other_inputs_is_409(api: Api, document: dict[str, Any]) -> None:
    account = new_id("acct")
    key = new_id("grant")
    body = {"account_id": account, "credits": 5, "idempotency_key": key, "reason": "r"}
    assert api.post("/v1/grants", body).status_code == 200
    assert api.post("/v1/grants", body).json()["balance"] == 5  # a replay of the grant itself
    refusal = problem(document, api.post("/v1/grants", body | {"credits": 6}), 409, "conflict")
    assert refusal["error"] == "IdempotencyConflict"
    assert balance(api, account) == 5


def test_concurrent_requests_under_one_key_charge_once(api: Api, document: dict[str, Any]) -> None:
    account = new_id("acct")
    grant(api, account, 100)
    charge = charge_body(account, credits=10)
    key = new_id("idem")

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
            problem(document, answer, 409, "idempotency-key-in-use")
        else:
            assert answer.json() == first[0].json()
    assert balance(api, account) == 90
