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


def _in_one_write(server: IngressServer, extra_header_bytes: int) -> tuple[int, bytes]:
    """A genuine Kling delivery with an ``X-Big`` header of ``extra_header_bytes``, the whole
    request sent in one write (so no header block is ever incomplete at a read); its
    status code and raw answer."""
    text, headers = _kling()
    lines = ["POST /webhooks/kling HTTP/1.1", f"Host: {urlsplit(server.url).netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"X-Big: {'a' * extra_header_bytes}", f"Content-Length: {len(text)}"]
    lines += ["Connection: close", "", text]
    with socket.create_connection((urlsplit(server.url).hostname, server.port)) as sender:
        sender.sendall("\r\n".join(lines).encode())
        answer = b""
        while chunk := sender.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


@pytest.mark.parametrize("size", [17_000, 60_000])
def test_headers_over_the_limit_are_refused_even_when_they_arrive_in_one_read(
    server: IngressServer, size: int
) -> None:
    """Kind: a limit applied only to what arrives in pieces. h11 bounds a header block still
    incomplete after a read; one read takes up to 64 KiB whole. README: request line and
    headers over 16 KiB are refused, and nothing is kept."""
    before, counted = kept(server), server.metric("kling", "headers_too_large")
    status, _ = _in_one_write(server, size)
    assert status == 431
    assert kept(server) == before
    assert server.metric("kling", "headers_too_large") == counted + 1
    assert _in_one_write(server, 1_000)[0] == 200  # a big but allowed header still passes
