"""The OpenAPI document served at ``/v1/openapi.json`` is a valid OpenAPI 3.1 document and
is the API: its paths and methods are exactly the routes the real server answers, each
documented success status is the one a valid request gets, and each answer validates
against the schema the document gives that status. Its request schemas take exactly the
keyword arguments of ``workers.client``."""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.support.api import Api, schema_validator
from tests.support.ingress import base_env, start
from tests.support.redis_server import RedisServer
from workers import client

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def _valid_request(api: Api, path: str) -> tuple[str, dict[str, Any] | None]:
    """A concrete path and a valid body for the documented ``path`` (its ids made up, the
    account given credits first)."""
    account = f"acct-{uuid.uuid4().hex[:10]}"
    generation = f"gen-{uuid.uuid4().hex[:10]}"
    grant = {"account_id": account, "credits": 50, "idempotency_key": generation, "reason": "r"}
    assert api.post("/v1/grants", grant).status_code == 200
    charge = {
        "generation_id": generation,
        "account_id": account,
        "provider": "fal",
        "operation": "video",
        "credits": 10,
    }
    assert api.post("/v1/charges", charge).status_code == 200
    bodies: dict[str, dict[str, Any] | None] = {
        "/v1/charges": charge | {"generation_id": f"{generation}-2"},
        "/v1/results": {"provider": "fal", "payload": {"request_id": str(uuid.uuid4())}},
        "/v1/grants": grant | {"idempotency_key": f"{generation}-g"},
    }
    concrete = path.replace("{account_id}", account).replace("{generation_id}", generation)
    return concrete, bodies.get(path)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def test_every_documented_operation_answers_its_documented_status_and_schema(
    api: Api, document: dict[str, Any]
) -> None:
    seen = 0
    for path, method, operation in _operations(document):
        concrete, body = _valid_request(api, path)
        answer = api.request(method, concrete, body)
        responses = operation["responses"]
        [success] = [status for status in responses if status.startswith("2")]
        assert str(answer.status_code) == success, (method, path, answer.text)
        if method == "HEAD":  # the GET's answer, without a body
            assert answer.content == b"" and "content" not in responses[success]
            seen += 1
            continue
        schema = responses[success]["content"]["application/json"].get("schema")
        if schema is not None:
            name = schema["$ref"].rsplit("/", 1)[1]
            schema_validator(document, name).validate(answer.json())
        seen += 1
    assert seen == 9  # 6 operations, and HEAD beside each of the 3 GETs


def test_no_method_the_document_leaves_out_is_served(api: Api, document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        concrete, _ = _valid_request(api, path)
        for method in METHODS:
            if method.lower() in item:
                continue
            answer = api.request(method, concrete)
            assert answer.status_code == 405, (method, path, answer.status_code)
            assert answer.json()["type"] == "urn:refundry:problem:method-not-allowed"
            allowed = {m.strip() for m in answer.headers["allow"].split(",")}
            assert {m.lower() for m in allowed} == set(item), (path, allowed)


def test_a_path_the_document_leaves_out_is_not_served(api: Api) -> None:
    for path in ("/v1/charge", "/v1/accounts/a", "/v1/accounts/a/balances", "/v1/refunds"):
        answer = api.post(path, {})
        assert answer.status_code == 404, path
        assert answer.json()["type"] == "urn:refundry:problem:not-found"
        assert "error" not in answer.json()  # no route, not a missing resource


def test_the_document_names_the_servers_routes() -> None:
    """The mounted routes, read from the app itself, are the document's paths."""
    from workers.api import api_app
    from workers.api_openapi import openapi_document
    from workers.settings import Settings

    async def no_body(*args: object) -> bytes:
        raise AssertionError("no request is made")

    settings = Settings.from_env({"REFUNDRY_API_KEYS": "k" * 32})
    app = api_app(settings, no_body)
    served = {
        (method, "/v1" + re.sub(r"\{(\w+):path\}", r"{\1}", route.path))  # type: ignore[attr-defined]
        for route in app.routes
        for method in route.methods  # type: ignore[attr-defined]
    }
    documented = {(method, path) for path, method, _ in _operations(openapi_document())}
    assert served == documented


@pytest.mark.parametrize(
    ("schema", "function"),
    [
        ("ChargeRequest", client.charge),
        ("ResultRequest", client.report_result),
        ("GrantRequest", client.grant),
    ],
)
def test_request_schemas_take_the_python_clients_keyword_arguments(
    document: dict[str, Any], schema: str, function: Callable[..., Any]
) -> None:
    params = inspect.signature(function).parameters
    body = document["components"]["schemas"][schema]
    assert set(body["properties"]) == set(params)
    required = {name for name, p in params.items() if p.default is inspect.Parameter.empty}
    assert set(body["required"]) == required
    assert body["additionalProperties"] is False


def test_without_api_keys_no_v1_path_is_served(tmp_path: Path, redis_server: RedisServer) -> None:
    web = start(base_env(tmp_path, redis_server), tmp_path)
    try:
        assert web.http.get("/healthz").status_code == 200
        for path in ("/v1/openapi.json", "/v1/accounts/a/balance"):
            assert web.http.get(path, headers={"authorization": "Bearer x"}).status_code == 404
        assert web.http.post("/v1/charges", json={}).status_code == 404
    finally:
        web.close()
