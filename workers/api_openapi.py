"""The OpenAPI 3.1 document of the HTTP API (served at ``GET /v1/openapi.json``), built from
the one route table (``workers.api_routes.API_ROUTES``) and the schemas
(``workers.api_schemas``), so it cannot drift from the routes the server mounts."""

from __future__ import annotations

import re
from typing import Any, Final

from workers.api_problems import PROBLEM_TYPE, PROBLEMS
from workers.api_routes import API_ROUTES, ApiRoute
from workers.api_schemas import SCHEMAS

__all__ = ["OPENAPI_PATH", "openapi_document"]

OPENAPI_PATH: Final = "/v1/openapi.json"

_PARAMETER: Final = re.compile(r"\{(\w+)\}")

_IDEMPOTENCY_KEY: Final[dict[str, Any]] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Stripe's semantics: the same key and body get the first answer again "
    "(with Idempotent-Replayed: true); another body is 409; kept at least 24 hours; scoped "
    "per API key. 1 to 255 characters, the id rule of every id.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}

_REPLAYED: Final[dict[str, Any]] = {
    "Idempotent-Replayed": {
        "description": "true when this is the answer first given under the Idempotency-Key",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_TYPE: {"schema": _ref("Problem")}}}


def _problems(route: ApiRoute) -> dict[str, Any]:
    """The problem statuses ``route`` may answer, each with the titles behind it."""
    statuses = {401, 404, 500, 503}
    if route.request is not None:
        statuses |= {400, 408, 409, 413, 415, 422}
    else:
        statuses |= {422}
    titles: dict[int, list[str]] = {}
    for status, title in PROBLEMS.values():
        titles.setdefault(status, []).append(title)
    return {str(s): _problem("; ".join(titles[s])) for s in sorted(statuses)}


def _operation(route: ApiRoute) -> dict[str, Any]:
    success: dict[str, Any] = {
        "description": route.summary,
        "content": {"application/json": {"schema": _ref(route.response)}},
    }
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAMETER.findall(route.path)
    ]
    operation: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary}
    if route.request is not None:
        parameters.append(_IDEMPOTENCY_KEY)
        success["headers"] = _REPLAYED
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(route.request)}},
        }
    if parameters:
        operation["parameters"] = parameters
    operation["responses"] = {str(route.status): success, **_problems(route)}
    return operation


def _head(get: dict[str, Any]) -> dict[str, Any]:
    """The HEAD of a GET operation: the same answers, statuses and headers, without a body."""
    head = {k: v for k, v in get.items() if k != "responses"}
    head["operationId"] = f"{get['operationId']}Head"
    head["responses"] = {
        status: {k: v for k, v in answer.items() if k != "content"}
        for status, answer in get["responses"].items()
    }
    return head


def openapi_document(*, version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document: every route of ``API_ROUTES``, its schemas, bearer auth."""
    paths: dict[str, dict[str, Any]] = {}
    for route in API_ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    paths[OPENAPI_PATH] = {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}
            },
        }
    }
    for item in paths.values():  # every GET is served for HEAD too (RFC 9110 §9.3.2)
        if "get" in item:
            item["head"] = _head(item["get"])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Refundry pipeline API",
            "version": version,
            "description": "Charge generations, report results, grant credits and read "
            "balances and receipts from any language. Errors are RFC 9457 problem details.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
