"""A platform's endpoint for Refundry's events out, on a real loopback socket.

It does what the README's receiver does: verifies each delivery with the official
``standardwebhooks`` library (401 when it does not verify), applies each event once by its
``webhook-id`` to its own balances, and answers 2xx. A ``script`` decides, per request
number (1, 2, …), what it does instead: ``fail`` (503, nothing applied) or ``stall``
(applies, but answers only after ``stall_s``: the sender has timed out and will send the
event again). ``stop()`` takes it down (connections refused), ``start()`` brings it back
on the same port.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import standardwebhooks

from tests.support.servers import LOOPBACK

__all__ = ["EventReceiver", "Received"]

Script = Callable[[int], str]


@dataclass
class Received:
    """What the receiver kept: each event applied once, and what it saw besides."""

    applied: dict[str, dict[str, Any]] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)
    sequences: dict[str, list[int]] = field(default_factory=dict)
    balance_mismatches: list[str] = field(default_factory=list)
    """Events whose ``balance_after`` is not the balance the receiver reached with them."""
    balances_after: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per account, the ``(sequence, balance_after)`` stored as README advises: only from an
    event whose ``sequence`` is above the one stored (a replayed dead letter comes late)."""
    overlaps: list[str] = field(default_factory=list)
    """``webhook-id``s of requests that came while another with that id was in flight."""
    redeliveries: int = 0
    refused: int = 0
    failed: int = 0
    stalled: int = 0
    requests: int = 0


class EventReceiver:
    def __init__(self, secret: str, *, script: Script = lambda n: "ok", stall_s: float = 0.5):
        self._hook = standardwebhooks.Webhook(secret)
        self._script = script
        self._stall_s = stall_s
        self._lock = threading.Lock()
        self.received = Received()
        self._in_flight: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/refundry-events"

    def start(self) -> EventReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = receiver._handle(body, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handle(self, body: bytes, headers: dict[str, str]) -> int:
        webhook_id = headers.get("webhook-id", "")
        with self._lock:
            now_in_flight = self._in_flight.get(webhook_id, 0) + 1
            self._in_flight[webhook_id] = now_in_flight
            if now_in_flight > 1:
                self.received.overlaps.append(webhook_id)
        try:
            return self._answer(body, headers)
        finally:
            with self._lock:
                self._in_flight[webhook_id] -= 1

    def _answer(self, body: bytes, headers: dict[str, str]) -> int:
        with self._lock:
            self.received.requests += 1
            plan = self._script(self.received.requests)
        if plan == "fail":
            with self._lock:
                self.received.failed += 1
            return 503
        try:
            event = self._hook.verify(body, headers)
        except standardwebhooks.webhooks.WebhookVerificationError:
            with self._lock:
                self.received.refused += 1
            return 401
        self._apply(headers["webhook-id"], event)
        if plan == "stall":
            with self._lock:
                self.received.stalled += 1
            time.sleep(self._stall_s)  # the sender's timeout is shorter: it will send again
        return 204

    def _apply(self, webhook_id: str, event: dict[str, Any]) -> None:
        """Apply once by ``webhook-id`` (what the README's receiver does)."""
        with self._lock:
            got = self.received
            if webhook_id in got.applied:
                got.redeliveries += 1
                return
            data = event["data"]
            account = str(data["account_id"])
            got.applied[webhook_id] = event
            got.balances[account] = got.balances.get(account, 0) + int(data["amount"])
            if data["balance_after"] != got.balances[account]:
                got.balance_mismatches.append(webhook_id)
            got.sequences.setdefault(account, []).append(int(data["sequence"]))
            stored = got.balances_after.get(account, (0, 0))
            if int(data["sequence"]) > stored[0]:
                got.balances_after[account] = (int(data["sequence"]), int(data["balance_after"]))

    def __enter__(self) -> EventReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
