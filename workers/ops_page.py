"""The ops page, mounted at ``/ops`` by ``refundry web`` when ``REFUNDRY_OPS_TOKEN`` is set
(without it there is no page: 404). Server-rendered with jinja2 (``workers/templates/ops``),
no JavaScript. The front page shows the dead letters, the refund SLA's percentiles over a
window, the packs paid and not landed, and the recent conflicts and alerts.

| method and path | what |
| --- | --- |
| ``GET /ops/`` | the front page; dead letters filtered by ``queue``, ``reason``, ``provider`` |
| ``GET /ops/dead-letters/{id}`` | one dead letter with its redacted message |
| ``POST /ops/dead-letters/{id}/replay`` | back to the inbox and enqueued again |
| ``POST /ops/dead-letters/{id}/purge`` | forgotten; its event stays closed |
| ``GET``/``POST /ops/login``, ``POST /ops/logout`` | the session |

Anonymous: a page is redirected (303) to the login form; a wrong ``Authorization`` header is
401; a POST is 403. A POST with a session must carry the form's CSRF token (else 403);
see ``workers.ops_auth``. Every answer is ``no-store`` and may not be framed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from ledger import Ledger
from ledger.errors import DeadLetterNotFound, InvalidInput
from ledger.ops_sessions import OpsSessions
from workers import dead_letter_operations as dlq
from workers import ops_auth, ops_views
from workers.settings import Settings

__all__ = ["SECURITY_HEADERS", "ops_app"]

log = logging.getLogger(__name__)

SECURITY_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",  # no-referrer would make a browser send Origin: null
    "X-Content-Type-Options": "nosniff",
}
"""No script runs on the page, it is never cached, framed (a replay button under a
clickjacking overlay) or named in a referrer."""

Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    seconds = int(ms) / 1000
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("workers", "templates/ops"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(when=_when, duration=_duration)
    return Jinja2Templates(env=env)


def ops_app(
    settings: Settings,
    ledger: Callable[[], Ledger],
    enqueue: dlq.Enqueue,
    *,
    base: str = "/ops",
    wrong_login_delay_s: float = 1.0,
) -> Starlette:
    """The page as an ASGI app to mount at ``base``. ``settings.ops_token`` must be set. A
    wrong token is answered after ``wrong_login_delay_s``, one at a time
    (``ops_auth.WrongLogins``)."""
    token = settings.ops_token
    if not token:
        raise ValueError("the ops page needs REFUNDRY_OPS_TOKEN")
    templates = _templates()

    def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.update(
            base=base,
            logged_in=ops_auth.logged_in(request),
            csrf=ops_auth.csrf_token(request) if ops_auth.logged_in(request) else "",
            flash=request.session.pop("flash", None),
        )
        return templates.TemplateResponse(
            request, name, context, status_code=status, headers=SECURITY_HEADERS
        )

    max_age_ms = ops_auth.SESSION_MAX_AGE_S * 1000
    wrong_logins = ops_auth.WrongLogins(delay_s=wrong_login_delay_s)

    def live(handler: Handler) -> Handler:
        """The cookie's session counts only while it is live in the ledger (not logged out,
        not older than the cookie's age): otherwise it is cleared before ``handler`` runs."""

        async def checked(request: Request) -> Response:
            if ops_auth.logged_in(request):
                sessions = OpsSessions(ledger().db)
                sid = ops_auth.session_id(request)
                if not await run_in_threadpool(sessions.live, sid, max_age_ms=max_age_ms):
                    ops_auth.log_out(request)
            return await handler(request)

        return checked

    def allowed(request: Request) -> bool:
        return ops_auth.logged_in(request) or ops_auth.bearer_ok(request, token)

    def page(handler: Handler) -> Handler:
        """A GET for people and scripts: anonymous people go to the login form."""

        async def guarded(request: Request) -> Response:
            if allowed(request):
                return await handler(request)
            if "authorization" in request.headers:
                return _refused(401)
            return RedirectResponse(f"{base}/login", status_code=303, headers=SECURITY_HEADERS)

        return guarded

    def change(handler: Handler) -> Handler:
        """A POST: a bearer request, or a session whose form carries its CSRF token."""

        async def guarded(request: Request) -> Response:
            if not ops_auth.same_origin(request):
                log.warning("ops: %s %s refused (sent by another site)", "POST", request.url.path)
                return _refused(403)
            if not ops_auth.bearer_ok(request, token):
                form = await request.form()
                if not ops_auth.logged_in(request) or not ops_auth.csrf_ok(
                    request, form.get(ops_auth.CSRF_FIELD)
                ):
                    log.warning(
                        "ops: %s %s refused (no session or CSRF token)", "POST", request.url.path
                    )
                    return _refused(403)
            return await handler(request)

        return guarded

    async def login_form(request: Request) -> Response:
        return render(request, "login.html", refused=False)

    async def login(request: Request) -> Response:
        form = await request.form()
        presented = form.get("token")
        if isinstance(presented, str) and ops_auth.token_ok(presented, token):
            sessions = OpsSessions(ledger().db)
            ops_auth.log_in(request, await run_in_threadpool(sessions.start, max_age_ms=max_age_ms))
            log.info("ops: logged in")
            return RedirectResponse(f"{base}/", status_code=303, headers=SECURITY_HEADERS)
        await wrong_logins.refuse()
        ops_auth.log_out(request)
        return render(request, "login.html", status=401, refused=True)

    async def logout(request: Request) -> Response:
        await run_in_threadpool(OpsSessions(ledger().db).end, ops_auth.log_out(request))
        return RedirectResponse(f"{base}/login", status_code=303, headers=SECURITY_HEADERS)

    async def index(request: Request) -> Response:
        q = request.query_params
        filters = dlq.Filters(
            queue=q.get("queue") or None,
            reason=q.get("reason") or None,
            provider=q.get("provider") or None,
        )

        def read() -> tuple[list[dlq.DeadLetter], ops_views.Overview]:
            book = ledger()
            view = ops_views.overview(
                book,
                window=q.get("window", "24h"),
                sla_ms=settings.refund_sla_ms,
                warn_ms=settings.sla_warn_ms,
                landing_window_ms=settings.landing_window_s * 1000,
            )
            return dlq.listed(book), view

        every, view = await run_in_threadpool(read)
        letters = [d for d in every if filters.keep(d)]
        facets = {
            "queues": sorted({d.queue for d in every}),
            "reasons": sorted({d.error_class for d in every}),
            "providers": sorted({d.provider for d in every if d.provider}),
        }
        return render(
            request,
            "index.html",
            letters=letters,
            total=len(every),
            filtered=filters != dlq.Filters(),
            filters=filters,
            facets=facets,
            overview=view,
            windows=list(ops_views.WINDOWS),
            landing_window_ms=settings.landing_window_s * 1000,
        )

    async def on_letter(request: Request, operation: Callable[..., T], *args: Any) -> T | None:
        """``operation(ledger, message_id, *args)`` in a worker thread; None when the path
        names no dead letter."""
        try:
            return await run_in_threadpool(
                operation, ledger(), request.path_params["message_id"], *args
            )
        except (DeadLetterNotFound, InvalidInput):
            return None

    async def show(request: Request) -> Response:
        letter = await on_letter(request, dlq.find)
        if letter is None:
            return _refused(404)
        payload = json.dumps(letter.payload(), indent=2, sort_keys=True, default=str)
        return render(request, "dead_letter.html", d=letter, payload=payload)

    async def replay(request: Request) -> Response:
        done = await on_letter(request, dlq.replay, enqueue)
        if done is None:
            return _refused(404)
        if done.enqueued:
            said = f"Replayed {done.message_id}: enqueued again."
        elif done.not_enqueued:
            said = (
                f"Replayed {done.message_id}: not enqueued ({done.not_enqueued}); "
                "the inbox sweep will send it."
            )
        else:
            said = f"Replayed {done.message_id}: its event was applied already."
        return _done(request, said, {"replayed": done.message_id, "enqueued": done.enqueued})

    async def purge(request: Request) -> Response:
        letter = await on_letter(request, dlq.purge)
        if letter is None:
            return _refused(404)
        return _done(request, f"Purged {letter.message_id}.", {"purged": letter.message_id})

    def _done(request: Request, said: str, answer: dict[str, Any]) -> Response:
        """A person goes back to the page, told what was done; a script gets JSON."""
        if ops_auth.logged_in(request):
            request.session["flash"] = said
            return RedirectResponse(f"{base}/", status_code=303, headers=SECURITY_HEADERS)
        return JSONResponse(answer, headers=SECURITY_HEADERS)

    routes = [
        Route("/", live(page(index)), methods=["GET"]),
        Route("/login", live(login_form), methods=["GET"]),
        Route("/login", live(login), methods=["POST"]),
        Route("/logout", live(change(logout)), methods=["POST"]),
        Route("/dead-letters/{message_id}", live(page(show)), methods=["GET"]),
        Route("/dead-letters/{message_id}/replay", live(change(replay)), methods=["POST"]),
        Route("/dead-letters/{message_id}/purge", live(change(purge)), methods=["POST"]),
    ]
    session = Middleware(
        SessionMiddleware,
        secret_key=ops_auth.session_key(token),
        session_cookie=ops_auth.SESSION_COOKIE,
        max_age=ops_auth.SESSION_MAX_AGE_S,
        path=base,
        same_site="strict",
        https_only=True,  # Secure: over http only to loopback, which browsers trust as secure
    )
    return Starlette(routes=routes, middleware=[session])


def _refused(status: int) -> Response:
    headers = dict(SECURITY_HEADERS)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="refundry ops"'
    return PlainTextResponse(
        {401: "unauthorized", 403: "forbidden", 404: "not found"}[status],
        status_code=status,
        headers=headers,
    )
