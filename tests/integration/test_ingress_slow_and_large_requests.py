"""``refundry web`` bounds what a client can hold: a header section past its bound is refused
before it is read whole (no process memory spent on a 64 MiB signature header), and a body
not sent within ``REFUNDRY_BODY_TIMEOUT_S`` is answered 408 and its connection closed, so
stalled clients neither pile up nor slow genuine deliveries."""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.support.ingress import IngressServer, base_env, body, standard_headers, start
from tests.support.processes import LOOPBACK
from tests.support.redis_server import RedisServer

KLING = "whsec_" + "c2xvdy1hbmQtbGFyZ2UtcmVxdWVzdHMtc2VjcmV0LTMy"
BODY_TIMEOUT_S = 2
ANSWER_BOUND_S = 10.0
"""How long the test waits for the server to end a connection it should end."""


@pytest.fixture(scope="module")
def web(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[IngressServer]:
    folder = tmp_path_factory.mktemp("slow")
    env = base_env(folder, redis_server) | {
        "KLING_WEBHOOK_SECRET": KLING,
        "REFUNDRY_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
    }
    server = start(env, folder)
    yield server
    server.close()


def _signed() -> tuple[str, dict[str, str]]:
    text = body({"task_id": f"kt-{uuid.uuid4().hex[:8]}", "task_status": "failed"})
    return text, standard_headers(KLING, text, webhook_id=f"wh-{uuid.uuid4()}")


def _head(web: IngressServer, headers: dict[str, str], length: int) -> bytes:
    lines = ["POST /webhooks/kling HTTP/1.1", f"Host: {LOOPBACK}:{web.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join([*lines, f"Content-Length: {length}", "", ""])).encode()


def _ended_by_server(sender: socket.socket) -> bytes:
    """What the server sent before it ended the connection (``b""`` if it only closed or
    reset it); ``socket.timeout`` propagates when it kept the connection open."""
    sender.settimeout(ANSWER_BOUND_S)
    received = b""
    try:
        while chunk := sender.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_a_header_section_past_its_bound_is_refused_before_it_is_read_whole(
    web: IngressServer,
) -> None:
    with socket.create_connection((LOOPBACK, web.port)) as sender:
        start_line = f"POST /webhooks/kling HTTP/1.1\r\nHost: {LOOPBACK}\r\nwebhook-signature: v1,"
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it stopped reading
            sender.sendall(start_line.encode() + b"A" * (256 * 1024))  # never terminated
        answer = _ended_by_server(sender)
    assert answer == b"" or answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), answer[:80]
    text, headers = _signed()
    assert web.post("kling", text, headers).status_code == 200


def test_a_body_not_sent_within_the_deadline_is_408_and_its_connection_closed(
    web: IngressServer,
) -> None:
    before = web.metric("kling", "slow_body")
    text, headers = _signed()
    with socket.create_connection((LOOPBACK, web.port)) as sender:
        sender.sendall(_head(web, headers, len(text)) + text[:10].encode())
        started = time.monotonic()
        answer = _ended_by_server(sender)  # the rest never comes
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert BODY_TIMEOUT_S - 0.5 <= took < ANSWER_BOUND_S
    assert web.metric("kling", "slow_body") == before + 1


def test_genuine_deliveries_are_answered_while_clients_stall_their_bodies(
    web: IngressServer,
) -> None:
    stalled = []
    try:
        for _ in range(40):
            text, headers = _signed()
            sender = socket.create_connection((LOOPBACK, web.port))
            sender.sendall(_head(web, headers, len(text)) + text[:10].encode())
            stalled.append(sender)
        started = time.monotonic()
        text, headers = _signed()
        assert web.post("kling", text, headers).status_code == 200
        assert time.monotonic() - started < BODY_TIMEOUT_S  # not queued behind them
        for sender in stalled:  # each ended by the server, within the bound
            assert _ended_by_server(sender).startswith(b"HTTP/1.1 408")
    finally:
        for sender in stalled:
            sender.close()


def test_a_large_header_section_within_the_bound_is_served(web: IngressServer) -> None:
    headers = {"x-padding": "p" * 8000}  # large, but within the bound: still served
    assert web.http.get("/healthz", headers=headers).status_code == 200
