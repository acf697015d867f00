"""``refundry web`` as a real uvicorn process: only deliveries that their provider's own scheme
verifies are kept, each once; forged, tampered, replayed, stale, future-dated, unsigned,
malformed and oversized requests are refused with an empty body and keep nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.fake_status_apis import suno_record
from tests.support.ingress import (
    FalSigner,
    IngressServer,
    base_env,
    body,
    now,
    standard_headers,
    start,
    stripe_headers,
)
from tests.support.ingress_routes import (
    KLING_NEW,
    KLING_OLD,
    LIMIT,
    OPENAI,
    OTHER,
    ROUTES,
    SECRETS,
    STRIPE_NEW,
    STRIPE_OLD,
    SUNO_API_KEY,
    Signed,
    fal_delivery,
    kept,
    kling_delivery,
    stripe_delivery,
    suno_delivery,
)
from tests.support.redis_server import RedisServer
from tests.support.scripted_http import ScriptedHTTPServer


@pytest.mark.parametrize("route", ROUTES)
def test_a_genuine_delivery_is_kept_once_and_its_redelivery_is_known(
    server: IngressServer, signer: Callable[..., Signed], route: str
) -> None:
    before = len(kept(server))
    name, text, headers = signer(route)
    first = server.post(name, text, headers)
    again = server.post(name, text, headers)
    assert first.status_code == 200 and first.json() == {
        "received": True,
        "kept": True,
        "redelivery": False,
    }
    assert again.status_code == 200 and again.json()["redelivery"] is True
    assert len(kept(server)) == before + 1


def test_a_suno_callback_is_a_hint_only_the_fetched_task_is_kept(
    server: IngressServer, suno: ScriptedHTTPServer
) -> None:
    name, text, headers = suno_delivery(suno)
    task = json.loads(text)["data"]["task_id"]
    assert server.post(name, text, headers).status_code == 200
    provider, payload = kept(server)[-1]
    assert provider == "suno"
    assert payload == suno_record(task, "GENERATE_AUDIO_FAILED")  # the API's word, not the body's
    assert [seen.authorization for seen in suno.seen(task)] == [f"Bearer {SUNO_API_KEY}"]


CASES = ["forged", "tampered", "stale", "future", "unsigned"]


def _refused_variant(signer: Callable[..., Signed], route: str, case: str) -> Signed:
    if case == "stale":
        return signer(route, at=now() - 400)
    if case == "future":
        return signer(route, at=now() + 400)
    if case == "forged":
        if route == "fal":
            return fal_delivery(FalSigner("not-fal"))
        key = {"stripe": "whsec_forger", "suno": "forger-key"}.get(route, OTHER)
        return signer(route, secret=key) if route != "suno" else signer(route, key=key)
    name, text, headers = signer(route)
    if case == "tampered" and route == "suno":  # only the task id is signed: change it
        return name, text.replace('"task_id":"task-', '"task_id":"task-x'), headers
    if case == "tampered":
        return name, text.replace("}", ',"extra":1}', 1), headers
    signature_headers = {"content-type": "application/json"}
    return name, text, signature_headers  # unsigned


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("route", ROUTES)
def test_a_delivery_that_its_scheme_does_not_verify_is_refused_401_and_nothing_is_kept(
    server: IngressServer, signer: Callable[..., Signed], route: str, case: str
) -> None:
    name, text, headers = _refused_variant(signer, route, case)
    before = kept(server)
    response = server.post(name, text, headers)
    assert (response.status_code, response.content) == (401, b"")
    assert kept(server) == before


def test_refusals_are_counted_by_why(server: IngressServer, signer: Callable[..., Signed]) -> None:
    stale_before = server.metric("kling", "stale")
    name, text, headers = signer("kling", at=now() - 400)
    assert server.post(name, text, headers).status_code == 401
    assert server.metric("kling", "stale") == stale_before + 1
    future_before = server.metric("openai", "future")
    name, text, headers = signer("openai", at=now() + 400)
    assert server.post(name, text, headers).status_code == 401
    assert server.metric("openai", "future") == future_before + 1


@pytest.mark.parametrize("garbled", ["v1", "v1,abc", "v1,a,b"])
def test_a_garbled_standard_signature_is_unreadable_not_forged(
    server: IngressServer, signer: Callable[..., Signed], garbled: str
) -> None:
    name, text, headers = signer("kling")
    unreadable, forged = server.metric("kling", "unreadable"), server.metric("kling", "forged")
    response = server.post(name, text, {**headers, "webhook-signature": garbled})
    assert (response.status_code, response.content) == (401, b"")
    assert server.metric("kling", "unreadable") == unreadable + 1
    assert server.metric("kling", "forged") == forged


def test_a_replayed_signature_under_another_delivery_id_is_refused(
    server: IngressServer, signer: Callable[..., Signed]
) -> None:
    name, text, headers = signer("kling")
    assert server.post(name, text, headers).status_code == 200
    replayed = {**headers, "webhook-id": f"wh-{uuid.uuid4()}"}
    assert server.post(name, text, replayed).status_code == 401


def test_a_delivery_replayed_after_five_minutes_is_refused_as_stale(
    server: IngressServer, signer: Callable[..., Signed]
) -> None:
    before = len(kept(server))
    name, text, headers = signer("stripe", at=now() - 301 - 5)  # captured, replayed later
    assert server.post(name, text, headers).status_code == 401
    assert len(kept(server)) == before


@pytest.mark.parametrize("route", ["kling", "stripe"])
def test_the_previous_secret_of_a_rotation_is_still_accepted(
    server: IngressServer, route: str
) -> None:
    name, text, headers = (
        kling_delivery(secret=KLING_OLD) if route == "kling" else stripe_delivery(secret=STRIPE_OLD)
    )
    assert server.post(name, text, headers).status_code == 200


def test_a_signed_body_that_is_not_a_json_object_is_malformed_400(server: IngressServer) -> None:
    before = len(kept(server))
    for text in ("not json", "[1, 2]", '{"a": NaN}', "[" * 3000):
        headers = standard_headers(KLING_NEW, text, webhook_id=f"wh-{uuid.uuid4()}")
        response = server.post("kling", text, headers)
        assert (response.status_code, response.content) == (400, b""), text[:20]
    assert len(kept(server)) == before


def test_a_known_stripe_event_missing_its_fields_is_malformed_400(server: IngressServer) -> None:
    event = {"id": "evt_x1", "object": "event", "type": "checkout.session.completed", "created": 1}
    text = body(event)
    assert server.post("stripe", text, stripe_headers(STRIPE_NEW, text)).status_code == 400


def test_an_oversized_body_is_413_by_its_length_and_by_what_is_streamed(
    server: IngressServer, signer: Callable[..., Signed]
) -> None:
    before = len(kept(server))
    big = body({"task_id": "k", "task_status": "failed", "pad": "x" * LIMIT})
    headers = standard_headers(KLING_NEW, big, webhook_id="wh-big")
    assert server.post("kling", big, headers).status_code == 413  # Content-Length says so

    def chunks() -> Iterator[bytes]:  # no Content-Length: only the streamed size tells
        for _ in range(8):
            yield big[: LIMIT // 2].encode()

    streamed = server.http.post("/webhooks/kling", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert len(kept(server)) == before


def test_a_foreign_fal_account_is_refused(server: IngressServer, fal_key: FalSigner) -> None:
    name, text, headers = fal_delivery(fal_key, user="someone-else")
    before = server.metric("fal", "foreign_account")
    assert server.post(name, text, headers).status_code == 401
    assert server.metric("fal", "foreign_account") == before + 1


def test_a_forged_suno_callback_fetches_nothing(
    server: IngressServer, suno: ScriptedHTTPServer
) -> None:
    name, text, headers = suno_delivery(suno, key="forger-key")
    task = json.loads(text)["data"]["task_id"]
    assert server.post(name, text, headers).status_code == 401
    assert suno.seen(task) == []


def test_an_openai_event_type_of_no_use_is_acknowledged_and_not_kept(
    server: IngressServer,
) -> None:
    event = {"id": "evt_r1", "object": "event", "type": "response.completed", "data": {"id": "r"}}
    text = body(event)
    before = len(kept(server))
    response = server.post("openai", text, standard_headers(OPENAI, text, webhook_id="wh_r1"))
    assert response.status_code == 200 and response.json()["kept"] is False
    assert len(kept(server)) == before


def test_no_secret_reaches_the_responses_or_the_log(
    server: IngressServer, signer: Callable[..., Signed]
) -> None:
    for route in ROUTES:
        for case in CASES:
            name, text, headers = _refused_variant(signer, route, case)
            response = server.post(name, text, headers)
            assert not any(secret.encode() in response.content for secret in SECRETS)
    log = server.log.read_text()
    assert "refused" in log  # the refusals were logged ...
    assert not any(secret in log for secret in SECRETS)  # ... without a secret


def test_a_route_whose_secret_is_unset_does_not_exist(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    web = start(base_env(tmp_path, redis_server) | {"FAL_JWKS_URL": "off"}, tmp_path)
    try:
        for route in ["stripe", "openai", "kling", "replicate", "fal", "suno"]:
            response = web.post(route, "{}", {"content-type": "application/json"})
            assert (response.status_code, response.content) == (404, b""), route
        assert web.http.get("/readyz").json() == {"database": True, "broker": True}
        assert web.http.get("/webhooks/kling").status_code == 405
    finally:
        web.close()
    assert isinstance(web.http, httpx.Client)
