"""A Sentry ingest endpoint on a real loopback socket: what sentry-sdk posts, kept to be read.

Modelled on Sentry's documentation, not on Refundry's code:

- the endpoint is ``POST /api/<project_id>/envelope/``; the client authenticates with the
  DSN's public key in ``X-Sentry-Auth: Sentry sentry_key=<key>, sentry_version=7, …`` (or a
  ``sentry_key`` query parameter); an unknown project or key is refused (401/403) and the
  body is compressed as ``Content-Encoding`` says (``gzip``, ``deflate``; sentry-sdk
  prefers ``br`` only when brotli is installed, and an encoding we cannot read is refused
  with 415) (https://develop.sentry.dev/sdk/foundations/transport/envelopes/ ,
  https://develop.sentry.dev/sdk/overview/#authentication);
- an envelope is a JSON header line, then items: each a JSON item header line (``type``,
  optional ``length`` in bytes) and its payload, ``length`` bytes when given, else up to
  the next newline (https://develop.sentry.dev/sdk/data-model/envelopes/);
- a ``check_in`` item carries ``check_in_id``, ``monitor_slug``, ``status`` (``in_progress``,
  ``ok``, ``error``), ``duration`` and an optional ``monitor_config``
  (https://develop.sentry.dev/sdk/telemetry/check-ins/);
- an accepted envelope is answered ``200`` with ``{"id": <event_id>}``.

Every accepted envelope is kept twice: its decompressed bytes (:attr:`raw`, to assert that a
secret is in none of them) and its parsed items (:meth:`items`).
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.servers import LOOPBACK

__all__ = ["EnvelopeError", "FakeSentry", "Item", "parse_envelope"]

_PATH = re.compile(r"/api/(?P<project>[0-9]+)/envelope/")
_AUTH_KEY = re.compile(r"sentry_key=([^,\s]+)")


class EnvelopeError(ValueError):
    """A body that is not an envelope as documented."""


@dataclass(frozen=True)
class Item:
    type: str
    headers: dict[str, Any]
    payload: bytes
    envelope_headers: dict[str, Any]

    def json(self) -> Any:
        return json.loads(self.payload)


def parse_envelope(body: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """The envelope's headers and its items as (item headers, payload bytes)."""
    header_line, sep, rest = body.partition(b"\n")
    try:
        headers = json.loads(header_line)
    except ValueError as exc:
        raise EnvelopeError("the first line is not a JSON object") from exc
    if not isinstance(headers, dict):
        raise EnvelopeError("the envelope header is not a JSON object")
    items: list[tuple[dict[str, Any], bytes]] = []
    while rest.strip():
        item_line, sep, rest = rest.partition(b"\n")
        if not sep and not item_line:
            break
        item_headers = json.loads(item_line)
        if not isinstance(item_headers, dict) or "type" not in item_headers:
            raise EnvelopeError("an item header without a type")
        length = item_headers.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            if len(rest) < int(length):
                raise EnvelopeError("an item shorter than its length")
            payload, rest = rest[: int(length)], rest[int(length) :]
            rest = rest.removeprefix(b"\n")
        items.append((item_headers, payload))
    return headers, items


class FakeSentry:
    """Start with :meth:`start` (or ``with``), stop with :meth:`close`; :attr:`dsn` is the DSN
    a Refundry process is given."""

    def __init__(self, *, project_id: str = "4242", public_key: str = "0123456789abcdef") -> None:
        self.project_id = project_id
        self.public_key = public_key
        self._lock = threading.Lock()
        self._raw: list[bytes] = []
        self._items: list[Item] = []
        self.refused: list[int] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def dsn(self) -> str:
        assert self._server is not None, "start the server first"
        return f"http://{self.public_key}@{LOOPBACK}:{self._server.server_port}/{self.project_id}"

    @property
    def raw(self) -> list[bytes]:
        """Every accepted envelope, decompressed, in arrival order."""
        with self._lock:
            return list(self._raw)

    def items(self, type_: str | None = None) -> list[Item]:
        """The items received so far (of ``type_``: ``event``, ``check_in``…)."""
        with self._lock:
            return [i for i in self._items if type_ is None or i.type == type_]

    def events(self) -> list[dict[str, Any]]:
        return [i.json() for i in self.items("event")]

    def check_ins(self) -> list[dict[str, Any]]:
        return [i.json() for i in self.items("check_in")]

    def start(self) -> FakeSentry:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                status, answer = fake._receive(self)
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSentry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _receive(self, request: BaseHTTPRequestHandler) -> tuple[int, dict[str, Any]]:
        url = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length)
        route = _PATH.fullmatch(url.path)
        if route is None or route["project"] != self.project_id:
            return self._refuse(404, "no such project")
        auth = _AUTH_KEY.search(request.headers.get("X-Sentry-Auth") or "")
        key = auth[1] if auth else dict(parse_qsl(url.query)).get("sentry_key")
        if key is None:
            return self._refuse(401, "missing authorization information")
        if key != self.public_key:
            return self._refuse(403, "invalid api key")
        encoding = (request.headers.get("Content-Encoding") or "identity").lower()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding != "identity":
                return self._refuse(415, f"unsupported content encoding {encoding}")
            headers, items = parse_envelope(body)
        except (EnvelopeError, ValueError, OSError, zlib.error):
            return self._refuse(400, "invalid envelope")
        with self._lock:
            self._raw.append(body)
            self._items += [Item(str(h["type"]), h, p, headers) for h, p in items]
        return 200, {"id": headers.get("event_id")}

    def _refuse(self, status: int, detail: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.refused.append(status)
        return status, {"detail": detail}
