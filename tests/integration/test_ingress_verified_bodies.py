"""A delivery's signature is checked before its body is read: a body nobody verified is 401
(counted ``forged``) whatever it holds, never "malformed"; every signature a Standard
Webhooks header lists is tried until one matches; and a verified body is kept only within
the payload rule every door applies (``workers.validation``): no lone surrogate, NaN,
Infinity, number past 100 digits, nesting past 32 levels or more than 1 MiB, and no job
id that could not be put into a status URL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from pathlib import Path

import pytest

from tests.support.ingress import (
    FalSigner,
    IngressServer,
    base_env,
    now,
    standard_headers,
    start,
    stripe_headers,
    suno_headers,
)
from tests.support.ingress_routes import FAL_USER, KLING_NEW, OPENAI, OTHER, STRIPE_NEW, kept
from tests.support.redis_server import RedisServer

NOT_UTF8 = b'{"id":"evt_\xff\xfe","task_id":"kt-\xc3(","status":"ERROR"}'


def _forged_headers(route: str) -> dict[str, str]:
    """Headers as each scheme expects them, signed with nobody's key."""
    if route in ("openai", "kling"):
        forged = base64.b64encode(os.urandom(32)).decode()
        return {
            "webhook-id": f"wh-{uuid.uuid4()}",
            "webhook-timestamp": str(now()),
            "webhook-signature": f"v1,{forged}",
        }
    if route == "stripe":
        return {"stripe-signature": f"t={now()},v1={'0' * 64}"}
    if route == "fal":
        return FalSigner("not-fal").headers("{}", request_id=str(uuid.uuid4()), user_id=FAL_USER)
    return suno_headers("forger-key", "task-1")


@pytest.mark.parametrize("route", ["openai", "kling", "stripe", "fal", "suno"])
def test_a_forged_delivery_whose_body_is_not_utf8_is_401_and_counted_forged(
    server: IngressServer, route: str
) -> None:
    forged, malformed = server.metric(route, "forged"), server.metric(route, "malformed")
    before = kept(server)
    response = server.post(route, NOT_UTF8, _forged_headers(route))
    assert (response.status_code, response.content) == (401, b"")
    assert (server.metric(route, "forged"), server.metric(route, "malformed")) == (
        forged + 1,
        malformed,
    )
    assert kept(server) == before


def _signed_bytes(secret: str, webhook_id: str, stamp: int, raw: bytes) -> str:
    """The Standard Webhooks signature of a body that is not text (the spec signs bytes:
    ``HMAC-SHA256(base64-decoded secret, "{id}.{timestamp}." + body)``; the library's
    ``sign`` takes text only)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{stamp}.".encode() + raw
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def test_a_genuine_delivery_whose_body_is_not_utf8_is_malformed_400(
    server: IngressServer,
) -> None:
    webhook_id, stamp = f"wh-{uuid.uuid4()}", now()
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": _signed_bytes(KLING_NEW, webhook_id, stamp, NOT_UTF8),
    }
    forged, malformed = server.metric("kling", "forged"), server.metric("kling", "malformed")
    response = server.post("kling", NOT_UTF8, headers)
    assert (response.status_code, response.content) == (400, b"")
    assert (server.metric("kling", "forged"), server.metric("kling", "malformed")) == (
        forged,
        malformed + 1,
    )


@pytest.mark.parametrize(
    "first",
    ["v1,not-base64!!", "v1", "v1,a,b", "v1a,AAAA", "v2,AAAA", f"v1,{'A' * 44}"],
)
def test_every_listed_signature_is_tried_until_one_matches(
    server: IngressServer, first: str
) -> None:
    text = json.dumps({"task_id": f"kt-{uuid.uuid4().hex[:8]}", "task_status": "failed"})
    headers = standard_headers(KLING_NEW, text, webhook_id=f"wh-{uuid.uuid4()}")
    headers["webhook-signature"] = f"{first} {headers['webhook-signature']}"
    response = server.post("kling", text, headers)
    assert response.status_code == 200 and response.json()["kept"] is True


def _deep(levels: int) -> object:
    node: object = 1
    for _ in range(levels):
        node = {"a": node}
    return node


BEYOND_THE_RULE = {
    "lone surrogate": r'"\ud800"',
    "lone surrogate key": r'{"\udfff": 1}',
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "101 digits": "1" * 101,
    "33 levels": json.dumps(_deep(33)),
    "1e400": "1e400",
    "-1e999": "-1e999",
}
"""JSON values outside the payload rule, placed inside an otherwise genuine delivery."""


def _signed_with(route: str, value: str) -> tuple[str, dict[str, str]]:
    if route == "stripe":
        text = (
            f'{{"id":"evt_{uuid.uuid4().hex[:20]}","object":"event","type":"customer.created",'
            f'"created":{now()},"data":{{"object":{{"id":"cus_1","object":"customer",'
            f'"name":{value}}}}}}}'
        )
        return text, stripe_headers(STRIPE_NEW, text)
    if route == "openai":
        text = (
            f'{{"id":"evt_{uuid.uuid4().hex}","object":"event","type":"video.failed",'
            f'"created_at":{now()},"data":{{"id":"video_1","note":{value}}}}}'
        )
        return text, standard_headers(OPENAI, text, webhook_id=f"wh-{uuid.uuid4()}")
    text = f'{{"task_id":"kt-{uuid.uuid4().hex[:8]}","task_status":"failed","note":{value}}}'
    return text, standard_headers(KLING_NEW, text, webhook_id=f"wh-{uuid.uuid4()}")


@pytest.mark.parametrize("case", list(BEYOND_THE_RULE))
@pytest.mark.parametrize("route", ["kling", "openai", "stripe"])
def test_a_verified_body_outside_the_payload_rule_is_400_and_nothing_is_kept(
    server: IngressServer, route: str, case: str
) -> None:
    text, headers = _signed_with(route, BEYOND_THE_RULE[case])
    malformed, before = server.metric(route, "malformed"), kept(server)
    response = server.post(route, text, headers)
    assert (response.status_code, response.content) == (400, b"")
    assert server.metric(route, "malformed") == malformed + 1
    assert kept(server) == before


def test_a_verified_fal_body_holding_a_lone_surrogate_is_400(
    server: IngressServer, fal_key: FalSigner
) -> None:
    request_id = str(uuid.uuid4())
    text = f'{{"request_id":"{request_id}","status":"ERROR","error":"\\ud800"}}'
    headers = fal_key.headers(text, request_id=request_id, user_id=FAL_USER)
    before = kept(server)
    assert server.post("fal", text, headers).status_code == 400
    assert kept(server) == before


@pytest.mark.parametrize("video", ["video_1/../../admin", "video_1?x=1", "video_" + "a" * 300])
def test_a_thin_openai_event_naming_what_cannot_be_a_job_id_is_400(
    server: IngressServer, video: str
) -> None:
    event = {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "video.failed"}
    text = json.dumps(event | {"created_at": now(), "data": {"id": video}})
    before = kept(server)
    response = server.post("openai", text, standard_headers(OPENAI, text, webhook_id="wh-v1"))
    assert (response.status_code, response.content) == (400, b"")
    assert kept(server) == before


def test_a_verified_body_over_the_payload_size_is_400_under_a_larger_body_limit(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = base_env(tmp_path, redis_server, max_body_bytes=4 * 1024 * 1024)
    web = start(env | {"KLING_WEBHOOK_SECRET": KLING_NEW}, tmp_path)
    try:
        pad = "x" * (1024 * 1024)
        text = json.dumps({"task_id": "kt-big", "task_status": "failed", "pad": pad})
        headers = standard_headers(KLING_NEW, text, webhook_id="wh-big")
        assert web.post("kling", text, headers).status_code == 400
        small = json.dumps({"task_id": "kt-small", "task_status": "failed"})
        assert (
            web.post("kling", small, standard_headers(OTHER, small, webhook_id="x")).status_code
            == 401
        )
    finally:
        web.close()
