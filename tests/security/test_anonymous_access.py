"""With an ops token set, ``/metrics`` and every ``/ops`` route refuse whoever does not
hold it: no header, a wrong bearer token, a forged session cookie; a POST that would replay
or purge a dead letter changes nothing. Through the whole ``refundry web`` app in-process
(``workers.web.create_app``) over a real ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from tests.support.ops import dead_letter_for_the_page
from tests.support.redis_server import RedisServer
from tests.support.web_app import web_app
from workers import runtime

TOKEN = "ops-token-security-review-0123456789abcdef"
SITE = "https://testserver"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[Starlette]:
    with web_app(tmp_path, redis_server, REFUNDRY_OPS_TOKEN=TOKEN) as asgi:
        ledger = runtime.ledger()
        dead_letter_for_the_page(ledger)
        yield asgi


def _client(app: Starlette, **how: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=SITE,
        **how,  # type: ignore[arg-type]
    )


STRANGERS = [
    {},
    {"Authorization": "Bearer wrong-token-of-the-same-length-0123456789ab"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Cookie": "refundry_ops=forged.session.cookie"},
]


@pytest.mark.parametrize("headers", STRANGERS)
async def test_metrics_refuse_whoever_does_not_hold_the_token(
    app: Starlette, headers: dict[str, str]
) -> None:
    async with _client(app) as client:
        refused = await client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert "refundry_" not in refused.text
        allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200 and "refundry_inbox_pending" in allowed.text


@pytest.mark.parametrize("headers", STRANGERS)
async def test_the_ops_page_shows_nothing_and_changes_nothing_for_a_stranger(
    app: Starlette, headers: dict[str, str]
) -> None:
    async with _client(app, follow_redirects=False) as client:
        for path in ("/ops/", "/ops/dead-letters/in_dead"):
            page = await client.get(path, headers=headers)
            assert page.status_code in (303, 401, 403), path
            assert "ChargeNotFound" not in page.text and "in_dead" not in page.text
        for action in ("replay", "purge"):
            post = await client.post(
                f"/ops/dead-letters/in_dead/{action}",
                headers={**headers, "Origin": SITE, "Sec-Fetch-Site": "same-origin"},
                data={"csrf_token": "guessed"},
            )
            assert post.status_code in (303, 401, 403), action
    still = runtime.ledger().dead.all()
    assert [row["message_id"] for row in still] == ["in_dead"]
