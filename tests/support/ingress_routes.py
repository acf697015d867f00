"""Every ingress route at once, for tests that post to them all: the secrets, one genuine
delivery per route (signed as ``tests.support.ingress`` signs them) and the environment of a
``refundry web`` that serves them (the integration conftest's ``server`` fixture)."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.support.fake_status_apis import suno_record
from tests.support.ingress import (
    FalSigner,
    IngressServer,
    base_env,
    body,
    inbox_rows,
    jwks_url,
    now,
    standard_headers,
    stripe_headers,
    suno_headers,
)
from tests.support.redis_server import RedisServer
from tests.support.scripted_http import Reply, ScriptedHTTPServer

OPENAI = "whsec_" + "b3BlbmFpLWluZ3Jlc3MtdGVzdC1zZWNyZXQtMzItYnl0ZXM="
KLING_NEW = "whsec_" + "a2xpbmctbmV3LWluZ3Jlc3MtdGVzdC1zZWNyZXQtMzI="
KLING_OLD = "whsec_" + "a2xpbmctb2xkLWluZ3Jlc3MtdGVzdC1zZWNyZXQtMzI="
STRIPE_NEW, STRIPE_OLD = "whsec_stripe_ingress_new_0123456789", "whsec_stripe_ingress_old_987654"
SUNO_KEY = "kie-hmac-ingress-test-key"
SUNO_API_KEY = "suno-api-key-ingress-test"
STRIPE_API_KEY, OPENAI_API_KEY = "sk_test_ingress_routes", "sk-ingress-routes"
SECRETS = (
    OPENAI,
    KLING_NEW,
    KLING_OLD,
    STRIPE_NEW,
    STRIPE_OLD,
    SUNO_KEY,
    SUNO_API_KEY,
    STRIPE_API_KEY,
    OPENAI_API_KEY,
)
OTHER = "whsec_" + "c29tZW9uZS1lbHNlLWVudGlyZWx5LXNlY3JldC0zMmI="
LIMIT = 4096
FAL_USER = "fal-user-1"

ROUTES = ["stripe", "openai", "kling", "fal", "suno"]


def routes_env(
    folder: Path, redis_server: RedisServer, jwks: ScriptedHTTPServer, suno: ScriptedHTTPServer
) -> dict[str, str]:
    """``refundry web`` with every route on, fal's keys from ``jwks``, Suno's API ``suno``."""
    return base_env(folder, redis_server, max_body_bytes=LIMIT) | {
        "STRIPE_WEBHOOK_SECRET": f"{STRIPE_NEW}, {STRIPE_OLD}",
        "OPENAI_WEBHOOK_SECRET": OPENAI,
        "KLING_WEBHOOK_SECRET": f"{KLING_NEW},{KLING_OLD}",
        "FAL_JWKS_URL": jwks_url(jwks),
        "FAL_WEBHOOK_USER_IDS": FAL_USER,
        "SUNO_WEBHOOK_SECRET": SUNO_KEY,
        "SUNO_API_KEY": SUNO_API_KEY,
        "SUNO_API_BASE": suno.url,
        "STRIPE_API_KEY": STRIPE_API_KEY,  # the routes that apply through the provider's API
        "OPENAI_API_KEY": OPENAI_API_KEY,  # start only with its key; nothing here calls it
    }


def kept(server: IngressServer) -> list[tuple[str, dict[str, object]]]:
    return inbox_rows(server.database_url)  # type: ignore[attr-defined]


# One genuine delivery per route: (route, body, headers) signed as the provider signs it.
Signed = tuple[str, str, dict[str, str]]


def kling_delivery(at: int | None = None, secret: str = KLING_NEW) -> Signed:
    text = body({"task_id": f"kt-{uuid.uuid4().hex[:8]}", "task_status": "failed"})
    return "kling", text, standard_headers(secret, text, webhook_id=f"wh-{uuid.uuid4()}", at=at)


def openai_delivery(at: int | None = None, secret: str = OPENAI) -> Signed:
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "created_at": now(),
        "type": "video.failed",
        "data": {"id": f"video_{uuid.uuid4().hex[:12]}"},
    }
    text = body(event)
    return "openai", text, standard_headers(secret, text, webhook_id=f"wh_{uuid.uuid4()}", at=at)


def stripe_delivery(at: int | None = None, secret: str = STRIPE_NEW) -> Signed:
    event = {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": "customer.created",
        "created": now(),
        "data": {"object": {"id": "cus_ingress", "object": "customer"}},
    }
    text = body(event)
    return "stripe", text, stripe_headers(secret, text, at=at)


def fal_delivery(key: FalSigner, at: int | None = None, user: str = FAL_USER) -> Signed:
    request_id = str(uuid.uuid4())
    payload = {"request_id": request_id, "status": "ERROR", "error": "boom", "payload": None}
    text = body(payload)
    return "fal", text, key.headers(text, request_id=request_id, user_id=user, at=at)


def suno_delivery(suno: ScriptedHTTPServer, at: int | None = None, key: str = SUNO_KEY) -> Signed:
    task = f"task-{uuid.uuid4().hex[:10]}"
    suno.script(task, Reply(200, suno_record(task, "GENERATE_AUDIO_FAILED")))
    claimed = {"code": 200, "msg": "ok", "data": {"callbackType": "complete", "task_id": task}}
    return "suno", body(claimed), suno_headers(key, task, at=at)
