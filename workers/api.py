"""The pipeline HTTP API under ``/v1`` (mounted by ``workers.web`` when
``REFUNDRY_API_KEYS`` is set; otherwise every ``/v1`` path is 404).

Every request but ``GET /v1/openapi.json`` carries ``Authorization: Bearer <key>`` with one
of the keys (``workers.api_keys``), else 401. A ``POST`` body is ``application/json`` (415),
held to the ingress' rules: at most ``REFUNDRY_MAX_BODY_BYTES`` (413), received within
``REFUNDRY_BODY_TIMEOUT_S`` (408), a JSON object by the payload rule every door applies
(``workers.validation.json_document``: 400). Its fields are ``workers.client``'s keyword
arguments, checked by the same rules (422 naming the field).

A ``POST`` may carry an ``Idempotency-Key`` (``ledger.api_idempotency``, Stripe's
semantics): the same key and body get the first answer again with ``Idempotent-Replayed:
true``, another body is 409, and so is a key whose first request is still in flight. An
answer is kept under its key once the request ran (a success, or a refusal by the ledger
such as insufficient credits); refused input or an unavailable ledger ran nothing and is
not kept, so a retry runs afresh.

Ledger work runs in a worker thread within ``REFUNDRY_INGRESS_DEADLINE_S``; past it the
answer is 503 and the request finishes on its own (keeping its answer under its key, so a
retry gets 409 while it runs, then the replay). Errors are RFC 9457 problem details
(``workers.api_problems``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar
from urllib.parse import unquote_to_bytes

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from handlers.webhook_verification import BodyMalformed, BodyTooLarge
from ledger.api_idempotency import ApiIdempotency, Claimed, Replay
from ledger.errors import (
    IdempotencyConflict,
    IdempotencyKeyInUse,
    InvalidIdentifier,
    InvalidPayload,
    RefundryError,
)
from workers import runtime, validation
from workers.api_keys import ApiKeys
from workers.api_openapi import OPENAPI_PATH, openapi_document
from workers.api_problems import Answer, from_error, problem
from workers.api_routes import API_ROUTES, ApiRoute
from workers.metrics import count_api_request
from workers.settings import Settings

__all__ = ["BodyReader", "api_app", "api_mount", "not_found"]

log = logging.getLogger(__name__)

BodyReader = Callable[[Request, int, float], Awaitable[bytes]]
"""``(request, limit, timeout_s) -> body``: the ingress' reader (``workers.web``), which
raises ``BodyTooLarge``, ``BodyMalformed`` or ``TimeoutError``."""

_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="refundry api"'}
_RETRY = {"Retry-After": "1"}


def _respond(result: Answer, *, replayed: bool = False) -> Response:
    headers = dict(result.headers)
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        result.text(), status_code=result.status, headers=headers, media_type=result.media_type
    )


_ONCE: Final = ("Authorization", "Idempotency-Key")
"""Headers a request sends at most once."""


def _utf8_path(request: Request) -> bool:
    """Whether the path, percent-decoded, is UTF-8 (Starlette would turn a byte that is not
    into U+FFFD, so ``%fe`` and ``%ff`` would name the same account)."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_PARSED_INLINE_BYTES = 65_536
"""Bodies up to this size are parsed on the event loop (well under a millisecond); larger
ones in a worker thread."""


def _parsed(raw: bytes) -> dict[str, Any]:
    """The API's JSON rule: the ingress's (``workers.validation.json_document``), and no
    member name twice in one object."""
    return validation.json_document(raw, field="body", unique_names=True)


def _fingerprint(route: ApiRoute, path: str, body: Any) -> str:
    """The request an idempotency key is bound to: method, path and body as parsed (so
    whitespace or key order do not make it another request)."""
    canonical = json.dumps(
        [route.method, path, body], sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _run(route: ApiRoute, body: dict[str, Any], params: Mapping[str, str]) -> Answer:
    """The route's answer; Refundry's own errors become problems (unexpected ones raise)."""
    try:
        return route.run(body, params)
    except RefundryError as exc:
        return from_error(exc)


def _idempotent(
    route: ApiRoute,
    body: dict[str, Any],
    params: Mapping[str, str],
    claim: Callable[[], Claimed | Replay | Answer],
    keys: ApiIdempotency,
) -> tuple[Answer, bool]:
    """Run under an idempotency key: ``(answer, replayed)``."""
    claimed = claim()
    if isinstance(claimed, Replay):
        return Answer(claimed.status, json.loads(claimed.body)), True
    if isinstance(claimed, Answer):  # the key refused
        return claimed, False
    try:
        result = _run(route, body, params)
    except BaseException:
        _release(keys, claimed)
        raise
    if result.keep:
        keys.finish(claimed, status=result.status, body=result.text())
    else:
        _release(keys, claimed)
    return result, False


def _release(keys: ApiIdempotency, claimed: Claimed) -> None:
    try:
        keys.release(claimed)
    except Exception as exc:  # the key's lease runs out instead (ledger.api_idempotency)
        log.warning("idempotency key not released (%s)", type(exc).__name__)


class _Api:
    """The routes' shared state: the settings, the keys, the body reader."""

    def __init__(self, settings: Settings, keys: ApiKeys, read_body: BodyReader) -> None:
        self.settings = settings
        self.keys = keys
        self.read_body = read_body
        self._store: ApiIdempotency | None = None

    @property
    def store(self) -> ApiIdempotency:
        if self._store is None:
            self._store = ApiIdempotency(runtime.ledger().db)
        return self._store

    async def body(self, request: Request) -> dict[str, Any] | Answer:
        """The request's JSON object, or the problem that refuses it."""
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            return problem("unsupported-media-type", "send the body as application/json")
        limit = self.settings.max_body_bytes
        try:
            raw = await self.read_body(request, limit, self.settings.body_timeout_s)
            if len(raw) <= _PARSED_INLINE_BYTES:
                return _parsed(raw)
            # A big body takes seconds of CPU to parse: in a thread, so /healthz and /readyz
            # (and every other request) are still answered meanwhile.
            return await anyio.to_thread.run_sync(_parsed, raw)
        except BodyTooLarge:
            return problem("body-too-large", f"the body is over {limit} bytes")
        except (BodyMalformed, InvalidPayload) as exc:
            return problem("malformed-body", str(exc), field_name="body", error="InvalidPayload")
        except TimeoutError:
            detail = f"the body was not received within {self.settings.body_timeout_s} s"
            return problem("request-timeout", detail, headers={"Connection": "close"})

    def claim(
        self, route: ApiRoute, request: Request, scope: str, key: str, body: dict[str, Any]
    ) -> Callable[[], Claimed | Replay | Answer]:
        """The claim of ``key`` for this request, to run in the worker thread."""
        fingerprint = _fingerprint(route, request.url.path, body)

        def claim() -> Claimed | Replay | Answer:
            try:
                return self.store.claim(scope=scope, key=key, fingerprint=fingerprint)
            except IdempotencyConflict as exc:
                return problem("idempotency-key-reused", str(exc), field_name="Idempotency-Key")
            except IdempotencyKeyInUse as exc:
                return from_error(exc)

        return claim

    def endpoint(self, route: ApiRoute) -> Callable[[Request], Awaitable[Response]]:
        answer = self.answer(route)

        async def endpoint(request: Request) -> Response:
            response = await answer(request)
            count_api_request(route.operation_id, response.status_code)
            return response

        return endpoint

    def answer(self, route: ApiRoute) -> Callable[[Request], Awaitable[Response]]:
        """``route``'s answer to a request: authenticated, its body read and held to the
        rules, run (under its idempotency key) in a worker thread within the deadline."""

        async def respond(request: Request) -> Response:
            for once in _ONCE:  # which of two would we read? A proxy may read the other
                if len(request.headers.getlist(once)) > 1:
                    detail = f"send the {once} header once"
                    return _respond(problem("repeated-header", detail, field_name=once))
            scope = self.keys.scope(request.headers.get("authorization"))
            if scope is None:
                detail = "send Authorization: Bearer <API key>"
                return _respond(problem("unauthorized", detail, headers=_UNAUTHORIZED))
            if not _utf8_path(request):
                name = next(iter(request.path_params), "path")
                detail = "the path is not UTF-8 text once percent-decoded"
                return _respond(
                    problem("invalid-input", detail, field_name=name, error="InvalidIdentifier")
                )
            body: dict[str, Any] = {}
            if route.request is not None:
                try:
                    got = await self.body(request)
                except ClientDisconnect:
                    return Response(status_code=400)  # sent to no one
                if isinstance(got, Answer):
                    return _respond(got)
                body = got
            params = dict(request.path_params)
            claim = None
            raw_key = request.headers.get("idempotency-key") if route.writes else None
            if raw_key is not None:
                try:
                    key = validation.identifier(raw_key, field="Idempotency-Key")
                except InvalidIdentifier as exc:
                    return _respond(
                        problem("invalid-idempotency-key", str(exc), field_name="Idempotency-Key")
                    )
                claim = self.claim(route, request, scope, key, body)

            def work() -> tuple[Answer, bool]:
                if claim is None:
                    return _run(route, body, params), False
                return _idempotent(route, body, params, claim, self.store)

            try:
                with anyio.fail_after(self.settings.ingress_deadline_s):
                    result, replayed = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
            except TimeoutError:
                log.warning("api %s %s: no answer in time; answered 503", route.method, route.path)
                detail = (
                    f"no answer within {self.settings.ingress_deadline_s} s; the request may"
                    " still complete: retry the same body under the same Idempotency-Key"
                    " (its answer is then replayed), never take it as not run"
                )
                result, replayed = problem("unavailable", detail, headers=_RETRY), False
            except RefundryError as exc:  # the ledger, on claiming or keeping a key
                log.warning("api %s %s: %s", route.method, route.path, type(exc).__name__)
                result, replayed = from_error(exc), False
            except Exception:
                log.exception("api %s %s failed", route.method, route.path)
                result, replayed = problem("internal", "unexpected error"), False
            return _respond(result, replayed=replayed)

        return respond


async def _http_problem(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (no such path, another method) as problem details."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        result = problem(
            "method-not-allowed", "see /v1/openapi.json", headers=dict(exc.headers or {})
        )
    else:
        result = problem("not-found", "no such path; see /v1/openapi.json")
    return _respond(result)


async def not_found(request: Request, exc: Exception) -> Response:
    """The web app's 404 (``workers.web``): a problem for a path of the API, however cased
    (``/v1``, ``/V1/charges``), Starlette's plain text elsewhere."""
    assert isinstance(exc, HTTPException)
    path = request.url.path.lower()
    if path == "/v1" or path.startswith("/v1/"):
        return await _http_problem(request, exc)
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


def _starlette_path(path: str) -> str:
    """``{name}`` → ``{name:path}``: an id may hold ``/`` (percent-encoded or not)."""
    return path.replace("}", ":path}")


_R = TypeVar("_R", Route, Mount)


def _any_character(route: _R) -> _R:
    """``route`` matching paths with any character, a newline too (Starlette's patterns do
    not): an id holding one is refused by the id rule as a problem, not left to the
    server's plain-text 404."""
    route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)
    return route


def api_app(settings: Settings, read_body: BodyReader) -> Starlette:
    """The app to mount at ``/v1`` (:func:`api_mount`), authenticating with
    ``settings.api_keys`` and reading bodies with ``read_body``."""
    keys = ApiKeys(settings.api_keys)
    api = _Api(settings, keys, read_body)
    document = openapi_document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes: list[BaseRoute] = [
        _any_character(
            Route(
                _starlette_path(route.path.removeprefix("/v1")),
                api.endpoint(route),
                methods=[route.method],
            )
        )
        for route in API_ROUTES
    ]
    routes.append(Route(OPENAPI_PATH.removeprefix("/v1"), openapi, methods=["GET"]))
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_problem})
    app.router.redirect_slashes = False
    return app


def api_mount(settings: Settings, read_body: BodyReader) -> Mount:
    """``/v1`` for ``workers.web``'s routes: :func:`api_app` mounted."""
    return _any_character(Mount("/v1", app=api_app(settings, read_body)))
