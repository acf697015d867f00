"""What a request can do to ``refundry web`` besides its signature: a signed callback naming
a task id no status API could be asked about is 400 (no retry can fix it), never 503; a
path with a trailing slash is the same route and no path is ever redirected (a Standard
Webhooks sender counts a 3xx as a failure); a sender that hangs up mid-body is one log line
and a count, never a traceback."""

from __future__ import annotations

import json
import socket
import uuid
from urllib.parse import urlsplit

import pytest

from tests.support.ingress import IngressServer, body, standard_headers, suno_headers
from tests.support.ingress_routes import KLING_NEW, SUNO_KEY, kept
from tests.support.scripted_http import ScriptedHTTPServer
from tests.support.waiting import wait_until


@pytest.mark.parametrize("task", ["abc&taskId=other", "../../v1/admin", "abc def", "a" * 300])
def test_a_signed_suno_callback_naming_an_invalid_task_id_is_400_and_fetches_nothing(
    server: IngressServer, suno: ScriptedHTTPServer, task: str
) -> None:
    claimed = {"code": 501, "msg": "failed", "data": {"callbackType": "error", "task_id": task}}
    asked, before = len(suno.seen()), kept(server)
    response = server.post("suno", body(claimed), suno_headers(SUNO_KEY, task))
    assert (response.status_code, response.content) == (400, b"")
    assert len(suno.seen()) == asked
    assert kept(server) == before


def _kling() -> tuple[str, dict[str, str]]:
    text = body({"task_id": f"kt-{uuid.uuid4().hex[:8]}", "task_status": "failed"})
    return text, standard_headers(KLING_NEW, text, webhook_id=f"wh-{uuid.uuid4()}")


def test_a_trailing_slash_is_the_same_route(server: IngressServer) -> None:
    text, headers = _kling()
    response = server.http.post("/webhooks/kling/", content=text, headers=headers)
    assert response.status_code == 200 and response.json()["kept"] is True


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/webhooks/kling/"),
        ("POST", "/webhooks//kling"),
        ("POST", "/webhooks/kling//"),
        ("POST", "/webhooks/"),
        ("GET", "/healthz/"),
        ("GET", "/readyz/"),
        ("GET", "/metrics/"),
    ],
)
def test_no_path_is_ever_redirected(server: IngressServer, method: str, path: str) -> None:
    text, headers = _kling()
    response = server.http.request(method, path, content=text, headers=headers)
    assert not response.is_redirect and "location" not in response.headers, response.status_code


def _hang_up_mid_body(server: IngressServer) -> None:
    text, headers = _kling()
    lines = ["POST /webhooks/kling HTTP/1.1", f"Host: {urlsplit(server.url).netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(text) + 1000}", "", ""]
    with socket.create_connection((urlsplit(server.url).hostname, server.port)) as sender:
        sender.sendall("\r\n".join(lines).encode() + text[:10].encode())


def test_a_sender_that_hangs_up_mid_body_is_one_log_line_and_a_count(
    server: IngressServer,
) -> None:
    before = server.metric("kling", "disconnected")
    logged = server.log.read_text().count("disconnected")
    for _ in range(3):
        _hang_up_mid_body(server)
    wait_until(
        lambda: server.metric("kling", "disconnected") == before + 3,
        timeout=10,
        message="the hang-ups were not counted",
    )
    log = server.log.read_text()
    assert log.count("disconnected") == logged + 3  # one line each
    assert "Traceback" not in log and "ClientDisconnect" not in log
    assert server.http.get("/healthz").json() == {"status": "ok"}
    assert json.loads(server.http.get("/readyz").content)["database"] is True
