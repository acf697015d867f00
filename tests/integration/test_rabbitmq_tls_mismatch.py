"""``amqps://`` against a listener that does not speak TLS: the probe behind ``refundry
worker``'s wait and ``/readyz`` raises one of the broker errors, so the worker waits with one
line per attempt (no traceback) as it does for any broker it cannot reach."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.support.processes import LOOPBACK
from workers.broker import BROKER_ERRORS, broker_answers
from workers.dependencies import wait_for_broker
from workers.settings import Settings


@pytest.fixture
def plain_listener() -> Iterator[int]:
    """A TCP server on loopback that answers every connection in plain text (as an AMQP
    listener without TLS does: its protocol header), then closes it."""
    server = socket.create_server((LOOPBACK, 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"AMQP\x00\x00\x09\x01")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def test_amqps_to_a_plain_listener_is_a_broker_error_and_the_wait_says_so_in_one_line(
    plain_listener: int,
) -> None:
    url = f"amqps://refundry:QAPW%2Fx@{LOOPBACK}:{plain_listener}/refundry"
    settings = Settings.from_env({"BROKER_URL": url, "REFUNDRY_HOME": "/nonexistent-home"})
    with pytest.raises(BROKER_ERRORS):
        broker_answers(settings, timeout_s=2.0)
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        if len(lines) == 2:
            raise KeyboardInterrupt  # two attempts seen: stop waiting

    with pytest.raises(KeyboardInterrupt):
        wait_for_broker(settings, report)
    assert all(line.startswith("cannot reach RabbitMQ at amqps://refundry@") for line in lines)
    assert all("\n" not in line and "QAPW" not in line for line in lines), lines
    assert all("waiting will not fix this" in line for line in lines), lines
