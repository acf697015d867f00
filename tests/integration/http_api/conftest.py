"""One ``refundry web`` with API keys and one ``refundry worker`` per backend (SQLite,
PostgreSQL), shared by the HTTP API's test modules; and the server's OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import Api, run_api
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="package", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
) -> Iterator[Api]:
    yield from run_api(request, tmp_path_factory.mktemp(f"api-{request.param}"), redis_server)


@pytest.fixture(scope="package")
def document(api: Api) -> dict[str, Any]:
    """``GET /v1/openapi.json`` (no key needed)."""
    answer = api.get("/v1/openapi.json", key=None)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    doc: dict[str, Any] = answer.json()
    return doc
