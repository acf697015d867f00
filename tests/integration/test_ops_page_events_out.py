"""An event out the platform's endpoint never took is a dead letter on the ops page (queue
``events_out``, its reason), opens with its summary, and its Replay button puts it back to
pending; on each backend, the page in-process over httpx's ASGI transport."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from handlers.events_out import EventsOut, EventsOutConfig
from ledger import Ledger
from ledger.outbox import Outbox
from tests.support.event_receiver import EventReceiver
from workers.ops_page import ops_app
from workers.settings import Settings

TOKEN = "ops-token-for-tests-0123456789abcdef"
SITE = "https://testserver"
SECRET = "whsec_" + base64.b64encode(b"ops-page-events-out-secret-32by!").decode()

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _dead_event(ledger: Ledger) -> None:
    ledger.grant(account_id="acct-ops", credits=3, idempotency_key="ops-1", reason="t")
    now = [2 * 10**12]
    with EventReceiver(SECRET, script=lambda n: "fail") as failing:
        config = EventsOutConfig(url=failing.url, secret=SECRET, give_up_ms=1)
        sender = EventsOut(Outbox(ledger.db), config, clock=lambda: now[0])
        try:
            sender.deliver_due(max_passes=1)
            now[0] += 10
            assert sender.deliver_due(max_passes=1).dead == 1
        finally:
            sender.close()


async def test_an_event_out_dead_letter_is_listed_shown_and_replayed(
    ledger: Ledger, tmp_path: Path
) -> None:
    _dead_event(ledger)
    settings = Settings.from_env({"REFUNDRY_OPS_TOKEN": TOKEN, "REFUNDRY_HOME": str(tmp_path)})
    page = ops_app(settings, lambda: ledger, lambda kind, inbox_id: None)
    app = Starlette(routes=[Mount("/ops", app=page)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=SITE) as browser:
        assert (await browser.post("/ops/login", data={"token": TOKEN})).status_code == 303
        front = await browser.get("/ops/", params={"queue": "events_out"})
        assert front.status_code == 200
        found = re.search(r'data-message-id="(event:\d+)"', front.text)
        assert found is not None
        assert "EventNotDelivered attempts=2 last=HTTP 503" in front.text
        letter = await browser.get(f"/ops/dead-letters/{found[1]}")
        assert letter.status_code == 200 and "credits.granted" in letter.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', front.text)
        assert csrf is not None
        done = await browser.post(
            f"/ops/dead-letters/{found[1]}/replay",
            data={"csrf_token": csrf[1]},
            headers={"Origin": SITE, "Sec-Fetch-Site": "same-origin"},
        )
        assert done.status_code == 303
    assert Outbox(ledger.db).figures().pending == 1 and Outbox(ledger.db).dead_letters() == []
