"""The wire side of the fake Stripe API (v1), on a real loopback socket: what every endpoint
shares, built from Stripe's documentation rather than from what Refundry sends.

- Requests: form-encoded as stripe-python sends them (``metadata[k]=v``, ``expand[]=a``,
  ``a[0][b]=c``), in the query of a GET and the body of a POST; a secret key as a bearer token
  (https://docs.stripe.com/api/authentication): none, or not ``sk_``/``rk_``, is a 401.
- Errors: the status and ``{"error": {"type", "code", "message", "param"}}``
  (https://docs.stripe.com/api/errors), with a ``doc_url`` for a coded error; ``api_error``
  for 5xx, ``invalid_request_error`` else.
- Idempotency (https://docs.stripe.com/api/idempotent_requests): a POST's ``Idempotency-Key``
  saves the first answer once the endpoint began executing, errors included; the same key with
  the same endpoint and parameters replays it with ``Idempotent-Replayed: true``; with others,
  a 400 ``idempotency_error``. A request refused by parameter validation is not saved.
- Lists (https://docs.stripe.com/api/pagination): newest first, ``limit`` 1 to 100 (default 10),
  ``starting_after`` / ``ending_before`` an object id, ``has_more``, ``url``.
- Scripted faults (:meth:`StripeHTTP.fault`): 5xx, 429 with ``Retry-After``, or a request
  held unanswered (a timeout), before the idempotency layer as a load balancer would, or after
  the effect (the answer is lost, or a 5xx after the object was made: Stripe calls a 500
  indeterminate); a 5xx ``saved`` under the request's idempotency key once the endpoint began
  executing ("Retries with the same key return the saved response, including 500 errors");
  and latency that lets something else happen meanwhile (:meth:`StripeHTTP.meanwhile`).
"""

from __future__ import annotations

import copy
import fnmatch
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.servers import LOOPBACK

__all__ = ["Fault", "Json", "Seen", "StripeFault", "StripeHTTP", "int_param", "invalid", "page"]

Json = dict[str, Any]
Opt = str | None
DOC_URL = "https://stripe.com/docs/error-codes/"


class StripeFault(Exception):
    """An answer in Stripe's error shape; raised inside the fake, sent as the response.
    ``saved``: whether the idempotency layer keeps it (not for a refused parameter)."""

    def __init__(
        self,
        msg: str,
        param: Opt = None,
        code: Opt = None,
        status: int = 400,
        *,
        kind: str | None = None,
        saved: bool = True,
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.saved = saved
        kind = kind or ("api_error" if status >= 500 else "invalid_request_error")
        self.body = {"error": {"type": kind, "code": code, "message": msg, "param": param}}
        if code:  # Stripe links every error code to its page
            self.body["error"]["doc_url"] = DOC_URL + code.replace("_", "-")


def invalid(msg: str, param: str, code: str = "parameter_invalid_integer") -> StripeFault:
    """A parameter refused before the endpoint ran: never saved under an idempotency key."""
    return StripeFault(msg, param, code, saved=False)


@dataclass(frozen=True)
class Seen:
    """One request as the fake received it; ``status`` 0: held, then dropped unanswered."""

    method: str
    path: str
    params: Json
    idempotency_key: str | None
    status: int = 0
    replayed: bool = False


@dataclass
class Fault:
    """What :meth:`StripeHTTP.fault` does to the next ``times`` requests (``None``: all) whose
    path matches ``path`` (``*`` matches within it), of any method or of ``method``: answer
    ``status`` (with ``Retry-After: retry_after``), or with ``hang_s`` hold the request that
    long (or until the fake closes) and drop it; after its effect if ``after_effect``. With
    ``saved`` the endpoint began and failed: the ``status`` answer is kept under the request's
    idempotency key and replayed to every retry with that key
    (https://docs.stripe.com/api/idempotent_requests)."""

    path: str
    times: int | None = 1
    method: str | None = None
    status: int = 500
    retry_after: int | None = None
    hang_s: float | None = None
    after_effect: bool = False
    saved: bool = False


def page(items: list[Json], url: str, params: Json, render: Callable[[Json], Json]) -> Json:
    """One page of a list, ``items`` newest first, as Stripe pages it."""
    limit = int_param(params, "limit", 10, 1)
    if limit > 100:
        raise invalid("This value must be less than or equal to 100.", "limit")
    ids = [o["id"] for o in items]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after is not None and before is not None:
        raise invalid("Only one of starting_after and ending_before", "ending_before", "")
    for name, cursor in (("starting_after", after), ("ending_before", before)):
        if cursor is not None and cursor not in ids:
            raise StripeFault(f"No such object: '{cursor}'", name, "resource_missing", 404)
    if after is not None:
        rest = items[ids.index(after) + 1 :]
        shown, more = rest[:limit], len(rest) > limit
    elif before is not None:
        rest = items[: ids.index(before)]
        shown, more = rest[-limit:], len(rest) > limit
    else:
        shown, more = items[:limit], len(items) > limit
    data = [render(o) for o in shown]
    return {"object": "list", "data": data, "has_more": more, "url": url}


class StripeHTTP:
    """The server; :meth:`_route` (overridden) answers one request, under ``self._lock``.
    Start with :meth:`start`, stop with :meth:`close`; ``url`` is the API base."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._keys: dict[str, tuple[tuple[Any, ...], int, Json]] = {}
        self._faults: list[Fault] = []
        self._meanwhile: list[tuple[str, str, Callable[[], object]]] = []
        self._seen: list[Seen] = []
        self._server = ThreadingHTTPServer((LOOPBACK, 0), _handler_for(self))
        self._server.daemon_threads = True
        serve = self._server.serve_forever
        self._thread = threading.Thread(target=serve, args=(0.05,), daemon=True)
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def start(self) -> StripeHTTP:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes held requests
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def fault(self, path: str, times: int | None = 1, **how: Any) -> None:
        """Script a :class:`Fault` for ``path`` (e.g. ``"/v1/refunds"``,
        ``"/v1/checkout/sessions/*/line_items"``): ``status=500`` (the default), 429 with
        ``retry_after=…``, or ``hang_s=…``."""
        with self._lock:
            self._faults.append(Fault(path, times, **how))

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def meanwhile(self, method: str, path: str, action: Callable[[], object]) -> None:
        """The next ``method`` request to ``path`` (``*`` matches) takes a moment at Stripe,
        during which ``action`` happens elsewhere (a webhook applied, say); then it is answered
        as usual, from the state as it is after ``action``."""
        with self._lock:
            self._meanwhile.append((method, path, action))

    def _route(self, method: str, path: str, params: Json, request_id: str, key: Opt) -> Json:
        raise NotImplementedError

    def _serve(self, method: str, target: str, headers: Any, body: str) -> tuple[int, Json, Json]:
        """(status, body, extra headers); status 0 means: drop the connection unanswered."""
        url = urlsplit(target)
        pairs = parse_qsl(body if method == "POST" else url.query, keep_blank_values=True)
        key = headers.get("Idempotency-Key") if method == "POST" else None
        seen = Seen(method, url.path.rstrip("/"), _decode(pairs), key)
        request_id = f"req_fake{time.monotonic_ns()}"
        reply = {"Request-Id": request_id}
        self._run_meanwhile(seen)
        fault = self._take_fault(seen)
        hang = fault is not None and fault.hang_s is not None
        inside = fault is not None and not hang and (fault.saved or fault.after_effect)
        if fault is not None and not hang and not inside:  # before the idempotency layer
            with self._lock:
                self._seen.append(replace(seen, status=fault.status))
            if fault.retry_after:
                reply["Retry-After"] = str(fault.retry_after)
            return fault.status, _server_error(fault.status).body, reply
        with self._lock:
            if hang and fault is not None and not fault.after_effect:
                status, answer, replayed = 0, {}, False
            else:
                failing = fault if inside else None
                status, answer, replayed = self._answer(seen, pairs, headers, request_id, failing)
            self._seen.append(replace(seen, status=0 if hang else status, replayed=replayed))
        if hang and fault is not None:
            self._closing.wait(fault.hang_s)
            return 0, {}, {}
        if replayed:
            reply["Idempotent-Replayed"] = "true"
        return status, answer, reply

    def _run_meanwhile(self, seen: Seen) -> None:
        with self._lock:
            due = next(
                (
                    m
                    for m in self._meanwhile
                    if m[0] == seen.method and fnmatch.fnmatchcase(seen.path, m[1])
                ),
                None,
            )
            if due is not None:
                self._meanwhile.remove(due)
        if due is not None:
            due[2]()  # outside the lock: the action may call the API itself

    def _take_fault(self, seen: Seen) -> Fault | None:
        with self._lock:
            fault = next(
                (
                    f
                    for f in self._faults
                    if fnmatch.fnmatchcase(seen.path, f.path)
                    and f.method in (None, seen.method)
                    and f.times != 0
                ),
                None,
            )
            if fault is not None and fault.times is not None:
                fault.times -= 1
            return fault

    def _answer(
        self,
        seen: Seen,
        pairs: list[tuple[str, str]],
        headers: Any,
        request_id: str,
        fault: Fault | None = None,
    ) -> tuple[int, Json, bool]:
        """(status, body, replayed) through authentication and the idempotency layer; a
        ``saved`` or ``after_effect`` :class:`Fault` fails the endpoint once it has begun."""
        refused = _unauthorised(headers.get("Authorization"))
        if refused is not None:
            return 401, refused.body, False
        fingerprint = (seen.method, seen.path, tuple(sorted(pairs)))
        key = seen.idempotency_key
        if key is not None and key in self._keys:
            first, status, answer = self._keys[key]
            if first == fingerprint:
                return status, copy.deepcopy(answer), True
            message = "Keys for idempotent requests can only be used with the same parameters"
            message += f" they were first used with. Try using a key other than '{key}' if"
            message += " you meant to execute a different request."
            error = StripeFault(message, kind="idempotency_error")
            return 400, error.body, False
        error = None if fault is None else _server_error(fault.status)
        try:
            if fault is not None and fault.saved and not fault.after_effect:
                raise _server_error(fault.status)  # began, failed before making anything
            status, answer = 200, self._route(seen.method, seen.path, seen.params, request_id, key)
        except StripeFault as refused:
            if not refused.saved:
                return refused.status, refused.body, False
            status, answer = refused.status, refused.body
        if key is not None and error is not None and fault is not None and fault.saved:
            self._keys[key] = (fingerprint, error.status, error.body)
        elif key is not None:
            self._keys[key] = (fingerprint, status, copy.deepcopy(answer))
        if error is not None:
            return error.status, error.body, False  # made (after_effect) or not: an error
        return status, answer, False


def _server_error(status: int) -> StripeFault:
    """The error Stripe answers for ``status``: a 429 is ``invalid_request_error`` with code
    ``rate_limit`` and the rate limiter's message (https://docs.stripe.com/rate-limits; the
    message as the libraries report it:
    https://github.com/codecombat/codecombat/issues/2588), a 5xx an ``api_error``."""
    if status == 429:
        message = "Request rate limit exceeded. Learn more about rate limits here"
        message += " https://docs.stripe.com/rate-limits."
        return StripeFault(message, None, "rate_limit", 429, kind="invalid_request_error")
    return StripeFault("An unknown error occurred", status=status)


def _unauthorised(header: str | None) -> StripeFault | None:
    secret = (header or "").removeprefix("Bearer ").strip()
    if not secret:
        message = "You did not provide an API key. You need to provide your API key in the"
        message += " Authorization header, using Bearer auth (e.g. 'Authorization: Bearer"
        message += " YOUR_SECRET_KEY')."
        return StripeFault(message, status=401)
    if not secret.startswith(("sk_", "rk_")):
        return StripeFault(f"Invalid API Key provided: {secret[:3]}****{secret[-4:]}", status=401)
    return None


def _decode(pairs: list[tuple[str, str]]) -> Json:
    """``a[b][c]=v`` → ``{"a": {"b": {"c": v}}}``; ``a[]=v`` and ``a[0]=v`` → lists."""
    root: Json = {}
    for key, value in pairs:
        *path, last = key.replace("]", "").split("[")
        node = root
        for part in path:
            node = node.setdefault(part, {})
        node[last or str(len(node))] = value
    return _listify(root)  # type: ignore[no-any-return]


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v) for k, v in value.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def int_param(params: Json, name: str, default: int, minimum: int = 0) -> int:
    try:
        value = int(params.get(name, default))
    except (TypeError, ValueError):
        value = minimum - 1
    if value < minimum:
        raise invalid(f"Invalid integer: {params.get(name)}", name)
    return value


def _handler_for(api: StripeHTTP) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without TCP_NODELAY the body waits for the
        # client's delayed ACK (about 40 ms a request on Linux).
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8") if length else ""
            status, answer, headers = api._serve(self.command, self.path, self.headers, body)
            if status == 0:
                self.close_connection = True
                return
            payload = json.dumps(answer).encode()
            self.send_response(status)
            headers |= {"Content-Type": "application/json", "Content-Length": str(len(payload))}
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read ``StripeHTTP.requests`` instead."""

    return Handler
