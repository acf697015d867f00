"""The HTTP API's idempotency keys, with Stripe's semantics
(https://docs.stripe.com/api/idempotent_requests):

- the first request under a key runs, and its answer (status and body) is kept;
- the same key with the same request (method, path and body as parsed: its
  ``fingerprint``) gets that answer again, without running anything;
- while the first request is still being answered, the same key raises
  ``IdempotencyKeyInUse`` (whatever the request);
- once it is answered, the same key with another request raises ``IdempotencyConflict``;
- keys are kept at least :data:`KEEP_MS` (24 hours), then purged; an older key not purged
  yet counts as new.

Keys are scoped per API key (``scope``: the SHA-256 of the API key, never the key itself).

The answer is kept after the effect's own transaction commits, not inside it: every
operation behind the API is idempotent by its own key in the ledger (a charge by its
generation, a grant by its key, a result by its delivery identity), so a request whose
answer was never kept (its process died in between) runs again under a new attempt once
its :data:`IN_FLIGHT_LEASE_MS` has passed, and has the same effect once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

from ledger.backends import Database, Row, required
from ledger.clock import now_ms
from ledger.errors import IdempotencyConflict, IdempotencyKeyInUse

__all__ = ["IN_FLIGHT_LEASE_MS", "KEEP_MS", "PURGE_EVERY_MS", "ApiIdempotency", "Claimed", "Replay"]

KEEP_MS: Final[int] = 24 * 3_600_000
"""How long a key's first answer is kept (Stripe: at least 24 hours)."""

PURGE_EVERY_MS: Final[int] = 60_000
"""How often a process purges expired keys, on the way of a claim."""

IN_FLIGHT_LEASE_MS: Final[int] = 30_000
"""An attempt not finished after this long is taken to have died (its process stopped
between the effect and keeping its answer): the next request under the key runs it again.
A key is thus ``in-use`` for at most 30 s after its process died. Longer than a request
normally takes (the ingress deadline, 8 s by default); a request still running past it (a
ledger locked that long) may be run a second time by a retry, which is harmless: every
operation behind the API has the same effect once by its own key in the ledger, and only the
first attempt to finish keeps its answer (:meth:`ApiIdempotency.finish`)."""


IN_USE: Final[str] = (
    "another request under this Idempotency-Key (and API key) is still being answered;"
    " retry the same request after Retry-After"
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """The key is this request's to answer: run it, then :meth:`ApiIdempotency.finish` (or
    :meth:`ApiIdempotency.release` when nothing ran)."""

    scope: str
    key: str
    attempt: str


@dataclass(frozen=True, slots=True)
class Replay:
    """The first answer given under the key: its HTTP status and JSON body (text)."""

    status: int
    body: str


class ApiIdempotency:
    """The keys table over one database. Thread-safe; one per process. Expired keys are
    purged by the first claim of each :data:`PURGE_EVERY_MS`, in its transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._next_purge_ms = 0  # a race between threads purges twice: harmless

    def claim(
        self, *, scope: str, key: str, fingerprint: str, at_ms: int | None = None
    ) -> Claimed | Replay:
        """Claim ``key`` in ``scope`` for a request with ``fingerprint`` (compare-and-set).

        Returns :class:`Claimed` for a new key (or one expired, or whose attempt died), or
        the :class:`Replay` of the answer kept for the same request. Raises
        ``IdempotencyConflict`` when the key was used with another request, and
        ``IdempotencyKeyInUse`` while its first request is still being answered. ``at_ms``
        replaces the clock (tests).
        """
        now = now_ms() if at_ms is None else at_ms
        attempt = secrets.token_hex(16)
        ids = {"scope": scope, "idempotency_key": key}
        with self.db.write() as tx:
            if now >= self._next_purge_ms:
                self._next_purge_ms = now + PURGE_EVERY_MS
                tx.all("purge_api_idempotency_keys", created_before_ms=now - KEEP_MS)
            inserted = tx.one(
                "insert_api_idempotency_key",
                **ids,
                fingerprint=fingerprint,
                attempt=attempt,
                now_ms=now,
            )
            if inserted is not None:
                return Claimed(scope, key, attempt)
            held = tx.one("lock_api_idempotency_key", **ids)
            if held is None:  # released by its attempt between our insert and this read
                raise IdempotencyKeyInUse(IN_USE, idempotency_key=key)
            expired = int(held["created_at_ms"]) <= now - KEEP_MS
            if not expired:
                live = int(held["locked_at_ms"]) > now - IN_FLIGHT_LEASE_MS
                if held["state"] == "in_flight" and live:
                    raise IdempotencyKeyInUse(IN_USE, idempotency_key=key)
                _same_request(held, fingerprint, key)
                if held["state"] == "done":
                    return Replay(int(held["status"]), str(held["response"]))
            # Expired (a new key), or an attempt that died (the same request, run again).
            restarted = tx.one(
                "restart_api_idempotency_key",
                **ids,
                fingerprint=fingerprint,
                attempt=attempt,
                held_attempt=held["attempt"],
                created_at_ms=now if expired else int(held["created_at_ms"]),
                now_ms=now,
            )
            required(restarted)  # the row is locked (or SQLite's write lock held)
            return Claimed(scope, key, attempt)

    def finish(self, claimed: Claimed, *, status: int, body: str) -> bool:
        """Keep the answer of ``claimed``'s request; False when its attempt was taken over
        (it outlived :data:`IN_FLIGHT_LEASE_MS`), and the answer kept is the other's."""
        with self.db.write() as tx:
            row = tx.one(
                "finish_api_idempotency_key",
                scope=claimed.scope,
                idempotency_key=claimed.key,
                attempt=claimed.attempt,
                status=status,
                response=body,
            )
        return row is not None

    def release(self, claimed: Claimed) -> None:
        """Forget ``claimed``'s key: its request ran nothing (refused input, the ledger
        unavailable), so a retry under the key runs afresh."""
        with self.db.write() as tx:
            tx.all(
                "release_api_idempotency_key",
                scope=claimed.scope,
                idempotency_key=claimed.key,
                attempt=claimed.attempt,
            )

    def purge(self, *, at_ms: int | None = None) -> int:
        """Forget every key older than :data:`KEEP_MS` at ``at_ms`` (default now); returns
        how many were forgotten."""
        now = now_ms() if at_ms is None else at_ms
        with self.db.write() as tx:
            rows = tx.all("purge_api_idempotency_keys", created_before_ms=now - KEEP_MS)
        return len(rows)


def _same_request(held: Row, fingerprint: str, key: str) -> None:
    if held["fingerprint"] != fingerprint:
        raise IdempotencyConflict(
            "idempotency key reused with another request", idempotency_key=key
        )
