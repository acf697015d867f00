"""The HTTP ingress (Procfile ``web``): starlette over ``handlers.ingress``, served by uvicorn.

| method and path | answer |
| --- | --- |
| ``POST /webhooks/{stripe,openai,kling,replicate,fal,suno}`` | 200 once the event is kept |
| ``POST /webhooks/{…}/`` | the same route (a trailing slash is never redirected) |
| ``GET /healthz`` | 200 while the process serves |
| ``GET /readyz`` | 200 when the ledger takes a write and the broker answers, else 503 |
| ``GET /metrics`` | Prometheus text format (``workers.metrics``); bearer only with an ops token |
| ``/ops…`` | the ops page (``workers.ops_page``) when ``REFUNDRY_OPS_TOKEN`` is set; else 404 |
| ``/v1…`` | the pipeline HTTP API (``workers.api``) when ``REFUNDRY_API_KEYS`` is set; else 404 |

A delivery is refused with an empty body: 404 when its route is disabled (no secret), 408
when its body is not received within ``REFUNDRY_BODY_TIMEOUT_S`` (and the connection is
closed), 413 over ``REFUNDRY_MAX_BODY_BYTES`` (the ``Content-Length`` and the bytes actually
streamed are both counted), 400 malformed, 401 not verified. A verified body is then held to
the payload rule every door applies (``workers.validation``: a strict JSON object, at most 32
levels deep, no number that overflows to Infinity …): 400 when it breaks it, and nothing is
kept. It is answered 200 only once
its inbox row is committed; anything else, a database outage included or no answer within
``REFUNDRY_INGRESS_DEADLINE_S``, is 503 so that the provider delivers it again. A delivery
still being kept when its deadline passes finishes in the background: its retry is then
known as a redelivery.

Routes verified by arithmetic alone (Stripe, Standard Webhooks) are verified on the event
loop and await their inbox row's group commit; fal (its key set may need fetching) and the
Suno-style hints (a fetch from the provider) run in a worker thread (anyio's pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from handlers.ingress import Accepted, Ingress, refusal
from handlers.ingress_routes import ROUTES, IngressConfig, RouteVerifier, build_routes
from handlers.webhook_verification import (
    BodyMalformed,
    BodyTooLarge,
    DeliveryRefused,
    HeadersTooLarge,
    NotVerified,
    RouteDisabled,
    split_secrets,
)
from providers.suno import SunoPoller
from workers import metrics as prometheus
from workers import ops_auth, ops_page, pg_pools, runtime, validation
from workers.logs import configure_logging, install_redaction, uvicorn_log_config
from workers.sentry_setup import init_sentry
from workers.settings import Settings

__all__ = ["READY_TIMEOUT_S", "build_ingress", "create_app", "serve"]

log = logging.getLogger(__name__)

INLINE_MAX_BYTES: Final = 65_536
"""A larger body of an inline route is verified in a worker thread (its JSON parse could
hold the event loop)."""

READY_TIMEOUT_S: Final = 2.0
"""``/readyz`` answers 503 for a check that takes longer than this."""

WRITE_PROBE_S: Final = 1.5
"""The ledger's write probe bounds itself by this (within :data:`READY_TIMEOUT_S`, so that
its own error is the one logged)."""

MAX_HEADER_BYTES: Final = 16_384
"""The request line and headers together, in bytes (h11's own default, made explicit): a
webhook's headers take well under 4 KiB. h11 applies it to a header block still incomplete
after a read; one that arrives whole in a single read (up to 64 KiB) is measured here."""

HINT_FETCH: Final[dict[str, Any]] = {"max_attempts": 2, "max_wait_s": 2.0}
"""The Suno-style hint route fetches the task while the provider waits for our answer: a
short retry budget; past it the provider is answered 503 and delivers again."""

_STATUS: Final[tuple[tuple[type[DeliveryRefused], int], ...]] = (
    (RouteDisabled, 404),
    (BodyTooLarge, 413),
    (HeadersTooLarge, 431),
    (NotVerified, 401),
    (BodyMalformed, 400),
)


def _status(refused: DeliveryRefused) -> int:
    return next((status for kind, status in _STATUS if isinstance(refused, kind)), 400)


def _ingress_config(settings: Settings) -> IngressConfig:
    keys = {
        "STRIPE_API_KEY": settings.stripe_api_key,
        "OPENAI_API_KEY": settings.openai_api_key,
        "SUNO_API_KEY": settings.suno_api_key,
    }
    return IngressConfig(
        stripe=split_secrets(settings.stripe_webhook_secret),
        openai=split_secrets(settings.openai_webhook_secret),
        kling=split_secrets(settings.kling_webhook_secret),
        replicate=split_secrets(settings.replicate_webhook_secret),
        suno=split_secrets(settings.suno_webhook_secret),
        fal_jwks_url=settings.fal_jwks_url,
        fal_user_ids=split_secrets(settings.fal_webhook_user_ids),
        api_keys=frozenset(name for name, value in keys.items() if value),
    )


def _routes(settings: Settings) -> dict[str, RouteVerifier]:
    """The enabled routes over this process's ledger; ``ConfigurationError`` for a secret
    that cannot be used or a route that could not apply what it keeps."""
    fetch = None
    if settings.suno_api_key:
        fetch = SunoPoller(settings.suno_api_key, settings.suno_api_base, **HINT_FETCH).poll
    return build_routes(_ingress_config(settings), runtime.ledger(), fetch=fetch)


def build_ingress(settings: Settings) -> Ingress:
    """The ingress over this process's ledger and broker, with the routes whose secrets are
    set. Raises ``ConfigurationError`` (see ``handlers.ingress_routes.build_routes``)."""
    routes = _routes(settings)
    from workers.actors import enqueue_event  # builds the broker

    return Ingress(
        runtime.ledger(),
        enqueue_event,
        routes,
        payload_rule=validation.payload,
        on_count=prometheus.count_webhook,
    )


def _check_header_size(request: Request) -> None:
    """``HeadersTooLarge`` (431) when the request line and headers, as received, exceed
    :data:`MAX_HEADER_BYTES`: each header line counted as ``name: value\\r\\n``."""
    scope = request.scope
    size = len(scope["method"]) + len(scope.get("raw_path") or b"") + len(" HTTP/1.1\r\n")
    size += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    if size > MAX_HEADER_BYTES:
        raise HeadersTooLarge(limit=MAX_HEADER_BYTES)


async def _body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The request body, refused past ``limit`` bytes whatever ``Content-Length`` claims;
    ``TimeoutError`` when it is not all received within ``timeout_s`` (a stalled sender
    must not hold a connection and its file descriptor)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BodyMalformed("Content-Length is not a number")
        if int(declared) > limit:
            raise BodyTooLarge(limit=limit)
    chunks, size = [], 0
    with anyio.fail_after(timeout_s):
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit=limit)
            chunks.append(chunk)
    return b"".join(chunks)


async def _in_thread(deadline_s: float, work: Callable[[], Any]) -> Any:
    """``work()`` in a worker thread; ``TimeoutError`` past the deadline (the thread is
    left to finish on its own)."""
    with anyio.fail_after(deadline_s):
        return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)


async def _deliver_inline(
    ingress: Ingress, route: str, body: bytes, headers: dict[str, str]
) -> Accepted:
    """A delivery whose verification does no I/O: verified on the event loop, then awaited
    until the inbox's group commit holds it (no worker thread)."""
    event = ingress.verify(route, body, headers)
    if event is None:
        return Accepted(None)
    recorded = await asyncio.wrap_future(ingress.submit(event))
    return ingress.accepted(route, event, recorded)


def _webhook(route: str, ingress: Ingress, settings: Settings) -> Callable[..., Any]:
    async def receive(request: Request) -> Response:
        try:
            if not ingress.enabled(route):
                raise RouteDisabled(route=route)
            _check_header_size(request)
            body = await _body(request, settings.max_body_bytes, settings.body_timeout_s)
        except DeliveryRefused as refused:  # refused before the ingress saw it
            ingress.count(route, refusal(refused))
            log.info("webhook %s refused: %s", route, refusal(refused))
            return Response(status_code=_status(refused))
        except ClientDisconnect:  # the sender hung up mid-body: it will deliver again
            ingress.count(route, "disconnected")
            log.info("webhook %s: the sender disconnected before its body was complete", route)
            return Response(status_code=400)  # sent to no one
        except TimeoutError:  # the sender stalled mid-body: it will deliver again
            ingress.count(route, "slow_body")
            log.info(
                "webhook %s: body not received within %d s; closed", route, settings.body_timeout_s
            )
            return Response(status_code=408, headers={"Connection": "close"})
        headers = dict(request.headers.items())  # names in lower case
        try:
            with anyio.fail_after(settings.ingress_deadline_s):
                if ingress.inline(route) and len(body) <= INLINE_MAX_BYTES:
                    accepted = await _deliver_inline(ingress, route, body, headers)
                else:
                    deliver = functools.partial(ingress.deliver, route, body, headers)
                    accepted = await anyio.to_thread.run_sync(deliver, abandon_on_cancel=True)
        except DeliveryRefused as refused:
            log.info("webhook %s refused: %s", route, refusal(refused))
            return Response(status_code=_status(refused))
        except Exception as exc:  # not kept, whatever the cause: the sender must retry
            ingress.count(route, "unavailable")
            log.warning("webhook %s not kept (%s); answered 503", route, type(exc).__name__)
            log.debug("webhook %s not kept", route, exc_info=True)
            return Response(status_code=503, headers={"Retry-After": "5"})
        return JSONResponse(
            {
                "received": True,
                "kept": accepted.inbox_id is not None,
                "redelivery": accepted.redelivery,
            }
        )

    return receive


def _ledger_takes_a_write() -> None:
    """A write transaction rolled back (``Database.probe_write``): reachable is not enough,
    a locked, read-only, removed or replaced ledger refuses every delivery."""
    runtime.ledger().db.probe_write(WRITE_PROBE_S)


def _broker_answers() -> None:
    from workers.broker import broker_answers

    broker_answers(runtime.settings(), timeout_s=READY_TIMEOUT_S)


async def _check(check: Callable[[], None]) -> bool:
    try:
        await _in_thread(READY_TIMEOUT_S, check)
    except Exception as exc:
        log.warning("readiness: %s failed (%s)", check.__name__, type(exc).__name__)
        return False
    return True


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    checks = {
        "database": await _check(_ledger_takes_a_write),
        "broker": await _check(_broker_answers),
    }
    return JSONResponse(checks, status_code=200 if all(checks.values()) else 503)


def _metrics(settings: Settings) -> Callable[[Request], Any]:
    """``GET /metrics``: the ledger's figures read now and the deliveries of every web
    process (``workers.metrics``); with an ops token, only for its bearer."""
    registry = prometheus.registry(
        runtime.ledger,
        sla_ms=settings.refund_sla_ms,
        landing_window_ms=settings.landing_window_s * 1000,
    )

    async def metrics(request: Request) -> Response:
        if settings.ops_token and not ops_auth.bearer_ok(request, settings.ops_token):
            return PlainTextResponse(
                "unauthorized",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="refundry metrics"'},
            )
        body = await anyio.to_thread.run_sync(prometheus.exposition, registry)
        return Response(body, media_type=prometheus.CONTENT_TYPE)

    return metrics


async def _to_ops_page(request: Request) -> Response:
    return RedirectResponse("/ops/", status_code=303)


def _enqueue(kind: str, inbox_id: str) -> None:
    from workers.actors import enqueue_event  # builds the broker

    enqueue_event(kind, inbox_id)


def create_app(settings: Settings | None = None, ingress: Ingress | None = None) -> Starlette:
    """The ASGI app; by default over this process's settings, ledger and broker."""
    settings = settings or runtime.settings()
    init_sentry(settings, process="web")  # before build_ingress builds the broker
    ingress = ingress or build_ingress(settings)
    routes: list[BaseRoute] = [
        Route(path, _webhook(name, ingress, settings), methods=["POST"])
        for name in ROUTES
        for path in (f"/webhooks/{name}", f"/webhooks/{name}/")  # as pasted in a dashboard
    ]
    routes += [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", _metrics(settings), methods=["GET"]),
    ]
    if settings.ops_token:
        page = ops_page.ops_app(settings, runtime.ledger, _enqueue)
        routes += [Route("/ops", _to_ops_page, methods=["GET"]), Mount("/ops", app=page)]
    if settings.api_keys:
        from workers.api import api_mount

        routes.append(api_mount(settings, _body))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await anyio.to_thread.run_sync(ingress.close)  # uvicorn has finished the requests

    app = Starlette(routes=routes, lifespan=lifespan)
    app.router.redirect_slashes = False  # a webhook sender counts a 3xx as a failed delivery
    app.state.ingress = ingress
    if settings.api_keys:
        from workers.api import not_found

        app.add_exception_handler(404, not_found)  # /v1 and /V1/… answer problem details
    log.info("webhook routes enabled: %s", ", ".join(sorted(ingress.routes)) or "none")
    return app


def serve(host: str, port: int, *, processes: int = 1) -> None:
    """Serve the ingress until SIGTERM / SIGINT (uvicorn finishes requests in flight)."""
    install_redaction()
    # uvicorn re-raises SIGTERM once it has shut down: exit through Python instead, so the
    # atexit hooks run (the embedded Redis this process started is stopped).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    settings = runtime.settings()
    configure_logging(settings.log_format)
    book = runtime.ledger()  # migrations applied once, before any request
    pg_pools.check_room(  # every server process opens its own pool
        book,
        processes * settings.pg_pool_size,
        what=f"refundry web -p {processes}",
        own_pool=runtime.pool_name(),
    )
    if processes > 1:
        _routes(settings)  # a bad secret or key stops this command, not each server process
        from workers.broker import resolve_redis_url

        if settings.amqp_url is None:
            os.environ["REDIS_URL"] = resolve_redis_url(settings)  # one broker for every process
        uvicorn.run(
            "workers.web:create_app",
            factory=True,
            workers=processes,
            **_server(host, port, settings.log_format),
        )
        return
    uvicorn.run(create_app(settings), **_server(host, port, settings.log_format))


def _server(host: str, port: int, log_format: str) -> dict[str, Any]:
    """uvicorn's options. h11, not httptools: h11 bounds the request line and headers
        (:data:`MAX_HEADER_BYTES`; an incomplete block past it is refused before it is read
        whole, a block read whole is measured by :func:`_check_header_size`),
        while uvicorn offers no header bound for httptools (a 64 MiB header was read whole;
        https://github.com/Kludex/uvicorn/issues/157). Neither times out a client that stalls
        before its headers are complete: internet-facing deployments sit behind a reverse proxy
        with header and body timeouts (README, "Behind a reverse proxy"); the body has its own
        deadline here (``REFUNDRY_BODY_TIMEOUT_S``). With JSON logs, uvicorn's own lines are JSON
    too (``workers.logs.uvicorn_log_config``)."""
    return {
        "host": host,
        "port": port,
        "http": "h11",
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "access_log": False,
        "server_header": False,
        **({"log_config": config} if (config := uvicorn_log_config(log_format)) else {}),
    }
