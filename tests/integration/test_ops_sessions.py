"""The ops page's sessions, as a browser or an attacker's page meets them (OWASP's Session
Management and CSRF Prevention cheat sheets): a POST from another site is refused even with
the session's cookie and CSRF token; logging out ends the session on the server, so a copy
of its cookie is refused; the cookie is ``Secure``; wrong tokens are slowed down and logged
once per interval. The page runs in-process, reached over
HTTPS through httpx's ASGI transport, over the ledger of each backend."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from ledger import Ledger
from tests.support.ops import dead_letter_for_the_page
from workers.ops_page import ops_app
from workers.settings import Settings

TOKEN = "ops-token-for-tests-0123456789abcdef"
SITE = "https://testserver"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _client(app: Starlette, cookies: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SITE, cookies=cookies)


@pytest.fixture
def app(ledger: Ledger, tmp_path: Path) -> Starlette:
    settings = Settings.from_env({"REFUNDRY_OPS_TOKEN": TOKEN, "REFUNDRY_HOME": str(tmp_path)})
    dead_letter_for_the_page(ledger)
    page = ops_app(settings, lambda: ledger, lambda kind, inbox_id: None)
    return Starlette(routes=[Mount("/ops", app=page)])


@pytest.fixture
async def browser(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app) as client:
        logged = await client.post("/ops/login", data={"token": TOKEN})
        assert logged.status_code == 303
        yield client


async def _csrf(client: httpx.AsyncClient) -> str:
    page = await client.get("/ops/")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "http://testserver"},  # the same host, another scheme: another origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another site's page
        {"Origin": "null"},
    ],
)
async def test_cross_site_post_refused_even_with_a_valid_session_and_csrf_token(
    browser: httpx.AsyncClient, ledger: Ledger, headers: dict[str, str]
) -> None:
    csrf = await _csrf(browser)
    refused = await browser.post(
        "/ops/dead-letters/in_dead/purge", data={"csrf_token": csrf}, headers=headers
    )
    assert refused.status_code == 403
    assert ledger.dead.get("in_dead") is not None


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": SITE, "Sec-Fetch-Site": "same-origin"},
        {"Origin": SITE},
        {},  # an older browser, or a proxy that strips both: the CSRF token still guards
    ],
)
async def test_cross_site_post_check_lets_the_pages_own_forms_through(
    browser: httpx.AsyncClient, ledger: Ledger, headers: dict[str, str]
) -> None:
    done = await browser.post(
        "/ops/dead-letters/in_dead/purge",
        data={"csrf_token": await _csrf(browser)},
        headers=headers,
    )
    assert done.status_code == 303
    assert ledger.dead.get("in_dead") is None


async def test_logout_ends_the_session_server_side_a_copied_cookie_is_refused(
    app: Starlette, browser: httpx.AsyncClient, ledger: Ledger
) -> None:
    csrf = await _csrf(browser)
    copied = dict(browser.cookies.items())
    assert (await browser.post("/ops/logout", data={"csrf_token": csrf})).status_code == 303
    async with _client(app, cookies=copied) as thief:
        page = await thief.get("/ops/")
        assert page.status_code == 303 and page.headers["location"] == "/ops/login"
        refused = await thief.post("/ops/dead-letters/in_dead/purge", data={"csrf_token": csrf})
        assert refused.status_code == 403
    assert ledger.dead.get("in_dead") is not None
    # logging in again gives a new session, which works
    assert (await browser.post("/ops/login", data={"token": TOKEN})).status_code == 303
    assert (await browser.get("/ops/")).status_code == 200


async def test_session_cookie_secure_httponly_samesite_strict(app: Starlette) -> None:
    async with _client(app) as client:
        logged = await client.post("/ops/login", data={"token": TOKEN})
    cookie = logged.headers["set-cookie"].lower()
    attributes = {part.strip().split("=")[0] for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite", "path"} <= attributes
    assert "samesite=strict" in cookie


async def test_login_attempts_slowed_after_a_wrong_token_and_logged_once_per_interval(
    ledger: Ledger, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_env({"REFUNDRY_OPS_TOKEN": TOKEN, "REFUNDRY_HOME": str(tmp_path)})
    page = ops_app(settings, lambda: ledger, lambda kind, inbox_id: None, wrong_login_delay_s=0.2)
    app = Starlette(routes=[Mount("/ops", app=page)])
    async with _client(app) as attacker:
        answered: list[tuple[str, int]] = []

        async def guess(n: int) -> None:
            answer = await attacker.post("/ops/login", data={"token": f"wrong-{n:032d}"})
            answered.append(("wrong", answer.status_code))

        async def engineer() -> None:
            answer = await attacker.post("/ops/login", data={"token": TOKEN})
            answered.append(("right", answer.status_code))

        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="workers.ops_page"):
            async with anyio.create_task_group() as group:
                for n in range(5):
                    group.start_soon(guess, n)
                group.start_soon(engineer)
        took = time.monotonic() - started
        assert took >= 5 * 0.2 * 0.9  # one wrong token at a time in this process, each delayed
        warnings = [r for r in caplog.records if "wrong token" in r.getMessage()]
        assert len(warnings) == 1  # not one line per attempt
        # The right token is never held back: it is answered while wrong ones still wait.
        assert ("right", 303) in answered and answered[-1][0] == "wrong", answered
