"""The pipeline HTTP API under test: ``refundry web`` with ``REFUNDRY_API_KEYS`` set, as a
real uvicorn process (``tests.support.ingress``), on a fresh SQLite or PostgreSQL ledger,
with real worker processes applying the results it keeps; and a client that speaks to it
as any language would, with plain HTTP and JSON."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.support.commands import WorkerProcesses
from tests.support.ingress import IngressServer, start
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer

__all__ = [
    "KEY_NEW",
    "KEY_OLD",
    "MAX_BODY_BYTES",
    "PROBLEM",
    "Api",
    "balance",
    "charge_body",
    "grant",
    "new_id",
    "problem",
    "run_api",
    "schema_validator",
    "valid",
]

KEY_OLD = "rfd-old-0123456789abcdef0123456789"
KEY_NEW = "rfd-new-fedcba9876543210fedcba9876"
MAX_BODY_BYTES = 16_384
PROBLEM = "application/problem+json"


class Api:
    """The running server, its environment, and requests sent with a bearer key."""

    def __init__(self, web: IngressServer, env: dict[str, str]) -> None:
        self.web = web
        self.env = env

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = KEY_OLD,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        sent: dict[str, str] = {}
        if key is not None:
            sent["authorization"] = f"Bearer {key}"
        if idempotency_key is not None:
            sent["idempotency-key"] = idempotency_key
        if body is not None or content is not None:
            sent["content-type"] = "application/json"
            content = content if content is not None else json.dumps(body).encode()
        sent.update(headers or {})
        return self.web.http.request(method, path, content=content, headers=sent)

    def post(self, path: str, body: Any, **how: Any) -> httpx.Response:
        return self.request("POST", path, body, **how)

    def get(self, path: str, **how: Any) -> httpx.Response:
        return self.request("GET", path, **how)


def run_api(
    request: pytest.FixtureRequest, folder: Path, redis_server: RedisServer
) -> Iterator[Api]:
    """``refundry web`` and ``refundry worker`` on the backend ``request.param`` names."""
    redis_server.start()
    postgres: PostgresServer | None = None
    if request.param == "postgresql":
        postgres = request.getfixturevalue("postgres_server")
        postgres.start()
        url = postgres.create_database()
    else:
        url = f"sqlite:///{folder / 'ledger.sqlite3'}"
    env = {
        "REDIS_URL": redis_server.url,
        "DATABASE_URL": url,
        "REFUNDRY_HOME": str(folder / "home"),
        "REFUNDRY_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "REFUNDRY_API_KEYS": f"{KEY_OLD},{KEY_NEW}",
    }
    web = start(env, folder)
    workers = WorkerProcesses(env, folder / "workers.log")
    workers.start(processes=1, threads=2)
    try:
        yield Api(web, env)
    finally:
        workers.stop()
        web.close()
        if postgres is not None and postgres.running:
            postgres.drop_database(url)


def schema_validator(document: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator of ``components.schemas[name]`` of an OpenAPI 3.1 ``document`` (JSON
    Schema 2020-12), its ``$ref``s resolved within the document."""
    resource: Resource[Any] = DRAFT202012.create_resource(document)
    registry: Registry[Any] = Registry().with_resource("urn:openapi", resource)
    return jsonschema.Draft202012Validator(
        {"$ref": f"urn:openapi#/components/schemas/{name}"},
        registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def valid(document: dict[str, Any], answer: httpx.Response, schema: str) -> dict[str, Any]:
    """The answer's JSON, after checking it against ``schema`` of the OpenAPI document."""
    body: dict[str, Any] = answer.json()
    schema_validator(document, schema).validate(body)
    return body


def problem(
    document: dict[str, Any], answer: httpx.Response, status: int, name: str
) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body = valid(document, answer, "Problem")
    assert body["type"] == f"urn:refundry:problem:{name}", body
    assert body["status"] == status
    return body


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def grant(api: Api, account: str, credits: int) -> None:
    key = new_id("grant")
    answer = api.post(
        "/v1/grants",
        {"account_id": account, "credits": credits, "idempotency_key": key, "reason": "top-up"},
    )
    assert answer.status_code == 200, answer.text


def charge_body(account: str, credits: int = 40) -> dict[str, Any]:
    return {
        "generation_id": new_id("gen"),
        "account_id": account,
        "provider": "fal",
        "operation": "video",
        "credits": credits,
        "provider_job_id": str(uuid.uuid4()),
    }


def balance(api: Api, account: str) -> int:
    answer = api.get(f"/v1/accounts/{account}/balance")
    assert answer.status_code == 200, answer.text
    return int(answer.json()["balance"])
