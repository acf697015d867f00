"""The ops page's sessions, kept in the ledger's database so that logging out ends one on
the server (OWASP Session Management Cheat Sheet, "Manual Session Expiration"): the page's
signed cookie names a session id, which is live from log-in until logout or its maximum age.
A cookie copied before the logout is refused after it, by every web process and host.
"""

from __future__ import annotations

import secrets

from ledger.backends import Database
from ledger.clock import now_ms

__all__ = ["OpsSessions"]


class OpsSessions:
    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, *, max_age_ms: int) -> str:
        """A new session's id (256 random bits, URL-safe); sessions older than ``max_age_ms``
        are forgotten on the way."""
        session_id = secrets.token_urlsafe(32)
        now = now_ms()
        with self.db.write() as tx:
            tx.all("forget_old_ops_sessions", started_before_ms=now - max_age_ms)
            tx.all("start_ops_session", id=session_id, now_ms=now)
        return session_id

    def live(self, session_id: object, *, max_age_ms: int) -> bool:
        """True when ``session_id`` names a session neither ended nor older than
        ``max_age_ms``."""
        if not isinstance(session_id, str) or not session_id:
            return False
        with self.db.read() as tx:
            row = tx.one("live_ops_session", id=session_id, started_after_ms=now_ms() - max_age_ms)
        return row is not None

    def end(self, session_id: object) -> None:
        """End the session (a compare-and-set: ending it twice changes nothing)."""
        if isinstance(session_id, str) and session_id:
            with self.db.write() as tx:
                tx.all("end_ops_session", id=session_id, now_ms=now_ms())
