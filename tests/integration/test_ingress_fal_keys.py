"""fal's keys come from its JWKS, served here by a local HTTP server: fetched once and kept,
fetched again once when fal signs with a key we do not hold (a rotation), never once per
forgery, and a delivery that cannot be checked yet is answered 503, not accepted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ingress import (
    FalSigner,
    IngressServer,
    base_env,
    body,
    jwks_reply,
    jwks_server,
    jwks_url,
    start,
)
from tests.support.redis_server import RedisServer
from tests.support.scripted_http import Reply, ScriptedHTTPServer
from tests.support.waiting import wait_until


def _delivery(key: FalSigner) -> tuple[str, dict[str, str]]:
    request_id = str(uuid.uuid4())
    text = body({"request_id": request_id, "status": "ERROR", "error": "boom", "payload": None})
    return text, key.headers(text, request_id=request_id)


@pytest.fixture
def old_key() -> FalSigner:
    return FalSigner("fal-old")


@pytest.fixture
def jwks(old_key: FalSigner) -> Iterator[ScriptedHTTPServer]:
    with jwks_server(old_key) as server:
        yield server


@pytest.fixture
def web(
    tmp_path: Path, redis_server: RedisServer, jwks: ScriptedHTTPServer
) -> Iterator[IngressServer]:
    server = start(base_env(tmp_path, redis_server) | {"FAL_JWKS_URL": jwks_url(jwks)}, tmp_path)
    yield server
    server.close()


def test_a_rotated_key_is_fetched_once_and_forgeries_fetch_nothing(
    web: IngressServer, jwks: ScriptedHTTPServer, old_key: FalSigner
) -> None:
    for _ in range(3):
        assert web.post("fal", *_delivery(old_key)).status_code == 200
    assert len(jwks.seen("jwks")) == 1  # fetched once, then kept

    new_key = FalSigner("fal-new")
    jwks.script("jwks", jwks_reply(new_key, old_key))  # fal publishes its next key
    assert web.post("fal", *_delivery(new_key)).status_code == 200
    assert len(jwks.seen("jwks")) == 2  # fetched again for the key we did not hold

    forger = FalSigner("forger")
    for _ in range(5):
        assert web.post("fal", *_delivery(forger)).status_code == 401
    assert len(jwks.seen("jwks")) == 2  # forgeries do not turn into key set requests


def test_a_delivery_that_cannot_be_checked_yet_is_503_then_accepted(
    web: IngressServer, jwks: ScriptedHTTPServer, old_key: FalSigner
) -> None:
    jwks.script("jwks", Reply(503, {"error": "unavailable"}), jwks_reply(old_key))
    text, headers = _delivery(old_key)
    first = web.post("fal", text, headers)
    assert (first.status_code, first.headers.get("retry-after")) == (503, "5")
    wait_until(
        lambda: web.post("fal", text, headers).status_code == 200,
        timeout=30,
        interval=1.0,
        message="the delivery was never accepted once the keys were back",
    )
    assert web.metric("fal", "unavailable") >= 1 and web.metric("fal", "accepted") == 1
