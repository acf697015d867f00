"""The webhook ingress under test: ``refundry web`` as a real uvicorn process on a free
loopback port, deliveries signed as each provider signs them (with the official libraries
where one exists), and fal's key set served by a local HTTP server.

Signing is done the providers' way, from their documentation, not through Refundry's code:
``standardwebhooks.Webhook.sign`` (OpenAI, Kling, Replicate), ``stripe.WebhookSignature
.generate_signature_header`` (Stripe), Ed25519 over fal's documented message with a key of
the test's own, and kie.ai's HMAC of task id and time (Suno-style).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import stripe
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from standardwebhooks import Webhook

from tests.integration.conftest import RefundryProcess
from tests.support.processes import LOOPBACK, ServerStartError, _log_section, free_port
from tests.support.redis_server import RedisServer
from tests.support.scripted_http import Reply, ScriptedHTTPServer
from tests.support.waiting import wait_until

__all__ = [
    "FalSigner",
    "IngressServer",
    "base_env",
    "body",
    "inbox_rows",
    "jwks_reply",
    "jwks_server",
    "jwks_url",
    "standard_headers",
    "start",
    "stripe_headers",
    "suno_headers",
]

JWKS_PATH = "/.well-known/jwks.json"


class IngressServer(RefundryProcess):
    """``refundry web`` on a free loopback port; :meth:`start` waits for ``/healthz``."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        super().__init__(env, log, "web", "--host", LOOPBACK, "--port", str(self.port))
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=30.0)

    def start(self, *extra: str, timeout: float = 60.0) -> None:
        super().start(*extra)

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise ServerStartError(f"refundry web exited\n{_log_section(self.log)}")
            try:
                return self.http.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_until(up, timeout=timeout, message="refundry web did not answer /healthz")
        except AssertionError as exc:
            raise ServerStartError(f"{exc}\n{_log_section(self.log)}") from None

    def close(self) -> None:
        self.stop()
        self.http.close()

    def post(self, route: str, body: bytes | str, headers: Mapping[str, str]) -> httpx.Response:
        content = body.encode() if isinstance(body, str) else body
        return self.http.post(f"/webhooks/{route}", content=content, headers=dict(headers))

    def metric(self, route: str, outcome: str) -> float:
        """``refundry_webhooks_total{route, result}`` as ``/metrics`` shows it."""
        wanted = f'refundry_webhooks_total{{result="{outcome}",route="{route}"}} '
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith(wanted):
                return float(line.removeprefix(wanted))
        return 0.0


def now() -> int:
    return int(time.time())


def standard_headers(
    secret: str, body: str, *, webhook_id: str, at: int | None = None
) -> dict[str, str]:
    """Standard Webhooks headers, signed with the ``standardwebhooks`` library."""
    stamp = now() if at is None else at
    signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(stamp, tz=UTC), body)
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature,
    }


def stripe_headers(secret: str, body: str, *, at: int | None = None) -> dict[str, str]:
    """``Stripe-Signature`` as the ``stripe`` library generates it."""
    stamp = now() if at is None else at
    header = stripe.WebhookSignature.generate_signature_header(body, secret, stamp)
    return {"content-type": "application/json", "stripe-signature": str(header)}


def suno_headers(key: str, task_id: str, *, at: int | None = None) -> dict[str, str]:
    """kie.ai's callback headers: ``base64(HMAC-SHA256(key, f"{taskId}.{timestamp}"))``."""
    stamp = now() if at is None else at
    digest = hmac.new(key.encode(), f"{task_id}.{stamp}".encode(), hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "x-webhook-timestamp": str(stamp),
        "x-webhook-signature": base64.b64encode(digest).decode(),
    }


class FalSigner:
    """An Ed25519 key standing in for fal's, and its JWKS entry."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self._key = Ed25519PrivateKey.generate()

    def jwk(self) -> dict[str, str]:
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "x": x, "use": "sig"}

    def headers(
        self, body: str, *, request_id: str, user_id: str = "fal-user-1", at: int | None = None
    ) -> dict[str, str]:
        """fal's headers: the signature of ``request_id\\nuser_id\\ntimestamp\\nsha256(body)``."""
        stamp = now() if at is None else at
        digest = hashlib.sha256(body.encode()).hexdigest()
        message = f"{request_id}\n{user_id}\n{stamp}\n{digest}".encode()
        return {
            "content-type": "application/json",
            "x-fal-webhook-request-id": request_id,
            "x-fal-webhook-user-id": user_id,
            "x-fal-webhook-timestamp": str(stamp),
            "x-fal-webhook-signature": self._key.sign(message).hex(),
        }


def jwks_server(*signers: FalSigner) -> ScriptedHTTPServer:
    """A local JWKS endpoint serving the signers' public keys (re-script it to rotate)."""
    server = ScriptedHTTPServer(
        lambda path, query: "jwks" if path == JWKS_PATH else None,
        lambda key: Reply(404, {"error": "not found"}),
    )
    server.script("jwks", jwks_reply(*signers))
    return server


def jwks_reply(*signers: FalSigner) -> Reply:
    return Reply(200, {"keys": [signer.jwk() for signer in signers]})


def jwks_url(server: ScriptedHTTPServer) -> str:
    return f"{server.url}{JWKS_PATH}"


def body(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def inbox_rows(url: str) -> list[tuple[str, dict[str, Any]]]:
    """``(provider, payload)`` of every inbox row, oldest first, read with the test's own SQL
    over a connection of its own (SQLite or PostgreSQL)."""
    select = "SELECT provider, payload FROM inbox ORDER BY received_at_ms, id"
    if url.startswith(("postgresql://", "postgres://")):
        with psycopg.connect(url, options="-c search_path=refundry") as conn:
            rows = conn.execute(select.encode()).fetchall()
    else:
        conn_ = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            rows = conn_.execute(select).fetchall()
        finally:
            conn_.close()
    return [(str(provider), json.loads(payload)) for provider, payload in rows]


def start(env: dict[str, str], folder: Path) -> IngressServer:
    """``refundry web`` started in ``env`` (its log in ``folder``); the test fails if it cannot."""
    server = IngressServer(env, folder / "web.log")
    try:
        server.start()
    except ServerStartError as exc:
        server.close()
        pytest.fail(f"could not start refundry web:\n{exc}", pytrace=False)
    return server


def base_env(
    folder: Path, redis_server: RedisServer, *, max_body_bytes: int = 4096
) -> dict[str, str]:
    """A fresh SQLite ledger and home in ``folder``, the session's Redis, a small body limit."""
    redis_server.start()  # no-op unless an earlier test left it stopped
    return {
        "REDIS_URL": redis_server.url,
        "DATABASE_URL": f"sqlite:///{folder / 'ledger.sqlite3'}",
        "REFUNDRY_HOME": str(folder / "home"),
        "REFUNDRY_MAX_BODY_BYTES": str(max_body_bytes),
    }
