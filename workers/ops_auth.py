"""Who may see the ops page and ``/metrics``: the holder of ``REFUNDRY_OPS_TOKEN``.

People log in once with the token and carry a session cookie (starlette's
``SessionMiddleware``: signed with itsdangerous, ``Secure``, ``SameSite=Strict``,
``HttpOnly``); scrapers and scripts send ``Authorization: Bearer <token>``. The session is
signed with a key derived from the token, so changing the token logs everyone out; the
cookie holds no secret, only the id of a session kept in the ledger's database
(``ledger.ops_sessions``), so logging out ends it on the server: a copy of the cookie is
refused after.

State changes are POSTs carrying the session's CSRF token (the synchronizer token pattern,
https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html):
a form posted from another site has neither the cookie (``SameSite=Strict``) nor the token,
and is refused with 403; so is any POST whose ``Origin`` or ``Sec-Fetch-Site`` header says
another site sent it (:func:`same_origin`). A bearer request needs no CSRF token: a browser
never adds that header by itself. It is a few lines over the session starlette already
signs, so no CSRF library is added for it. Tokens are compared in constant time, and never
logged or shown.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from typing import Final

import anyio
from starlette.requests import Request

__all__ = [
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "SESSION_MAX_AGE_S",
    "WrongLogins",
    "bearer_ok",
    "csrf_ok",
    "csrf_token",
    "log_in",
    "log_out",
    "logged_in",
    "same_origin",
    "session_id",
    "session_key",
    "token_ok",
]

log = logging.getLogger("workers.ops_page")  # the page's lines, under the page's logger

SESSION_COOKIE: Final = "refundry_ops"
SESSION_MAX_AGE_S: Final = 8 * 3600
"""One on-call shift; then the token is asked again."""
CSRF_FIELD: Final = "csrf_token"
SESSION_ID: Final = "sid"


def session_key(token: str) -> str:
    """The session cookie's signing key, derived from the ops token (never the token)."""
    return hmac.new(token.encode(), b"refundry ops session v1", hashlib.sha256).hexdigest()


def token_ok(presented: str, token: str) -> bool:
    """True when ``presented`` is the token; constant time whatever either holds (both are
    hashed first, so neither their length nor a non-ASCII byte changes the time taken)."""
    if not token:
        return False
    given = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(given, hashlib.sha256(token.encode()).digest())


def bearer_ok(request: Request, token: str) -> bool:
    """``Authorization: Bearer <token>`` names the token."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and token_ok(presented.strip(), token)


def logged_in(request: Request) -> bool:
    """The cookie's session is logged in (its id checked live by the page beforehand)."""
    return request.session.get("ops") is True


def session_id(request: Request) -> object:
    """The id of the server-side session the cookie names (None without one)."""
    return request.session.get(SESSION_ID)


def log_in(request: Request, started: str) -> None:
    """A fresh session (a new CSRF token) for the person who gave the token; ``started`` is
    its id in the ledger (``OpsSessions.start``)."""
    request.session.clear()
    request.session.update(
        {"ops": True, SESSION_ID: started, CSRF_FIELD: secrets.token_urlsafe(32)}
    )


def log_out(request: Request) -> object:
    """Forget the cookie's session; returns its id, for the caller to end on the server."""
    ended = request.session.get(SESSION_ID)
    request.session.clear()
    return ended


def csrf_token(request: Request) -> str:
    """The session's CSRF token, for the forms of the page (made with the session)."""
    value = request.session.get(CSRF_FIELD)
    if not isinstance(value, str):
        value = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = value
    return value


def same_origin(request: Request) -> bool:
    """False for a request a browser marks as sent by another site's page: an ``Origin``
    header other than the request's own origin (scheme, host and port, as the ``Host`` header
    and the scheme name them; ``null`` included), or ``Sec-Fetch-Site`` other than
    ``same-origin`` or ``none`` (typed by the user). A request with neither header (a script,
    an older browser) passes, guarded by the CSRF token alone. OWASP CSRF Prevention Cheat
    Sheet, "Verifying Origin With Standard Headers" and "Fetch Metadata headers". Behind a
    TLS-terminating proxy the scheme comes from ``X-Forwarded-Proto``, which uvicorn trusts
    from ``FORWARDED_ALLOW_IPS`` (loopback by default)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
    return hmac.compare_digest(origin.lower().encode(), own.lower().encode())


def csrf_ok(request: Request, presented: object) -> bool:
    """The form's token is the session's, compared in constant time."""
    expected = request.session.get(CSRF_FIELD)
    if not isinstance(presented, str) or not isinstance(expected, str) or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


class WrongLogins:
    """What a wrong token costs, per web process: its answer waits ``delay_s`` (1 s), and
    wrong tokens are answered one at a time, so one process answers at most one a second
    however many are sent at once (a 64-character token is out of reach of guessing anyway;
    this keeps the log and the ledger quiet). The right token is never held back. One
    WARNING line per ``interval_s`` (60 s) says how many wrong tokens came since the last.
    """

    def __init__(self, *, delay_s: float = 1.0, interval_s: float = 60.0) -> None:
        self._delay_s = delay_s
        self._interval_s = interval_s
        self._one_at_a_time = anyio.Lock()
        self._unlogged = 0
        self._log_after = 0.0

    async def refuse(self) -> None:
        """Count a wrong token, log it if its interval's line is due, then wait."""
        async with self._one_at_a_time:
            self._unlogged += 1
            now = time.monotonic()
            if now >= self._log_after:
                log.warning("ops: %d login(s) with the wrong token", self._unlogged)
                self._unlogged, self._log_after = 0, now + self._interval_s
            await anyio.sleep(self._delay_s)
