"""Events out: delivering the outbox (``ledger.outbox``) to the platform's endpoint,
signed with Standard Webhooks.

Each pass claims the due events (at most one per account: its lowest pending, so an
account's events arrive in order) and posts them at once, up to ``concurrency`` in flight.
A 2xx answer is delivered; anything else (another status, a timeout, a refused
connection, a redirect, which is never followed) is retried with exponential backoff and
jitter until ``give_up_ms`` after the first attempt (3 days by default), then the event is
a dead letter of its own (``refundry dlq``, the ops page), and the account's next event
goes.

Signing follows the Standard Webhooks spec
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
``webhook-id`` (stable across attempts), ``webhook-timestamp`` (the attempt's time, in
seconds: receivers refuse a stale one) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>``
of ``{id}.{timestamp}.{body}``), made by the ``standardwebhooks`` library.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import standardwebhooks

from handlers.webhook_verification import StandardWebhooks, split_secrets
from ledger.clock import now_ms
from ledger.errors import ConfigurationError, EventNotDelivered
from ledger.outbox import Attempt, DueEvent, Outbox, iso_ms

__all__ = ["DeliveryPass", "EventsOut", "EventsOutConfig", "backoff_ms"]

log = logging.getLogger("handlers.events_out")

URL_VARIABLE = "REFUNDRY_EVENTS_URL"
SECRET_VARIABLE = "REFUNDRY_EVENTS_SECRET"


@dataclass(frozen=True, slots=True)
class EventsOutConfig:
    """Where and how events go. Times in milliseconds unless named ``_s``."""

    url: str
    secret: str = field(repr=False)
    """``whsec_…``; during a rotation two, comma-separated: each event carries a signature
    by each (the spec's space-separated list), so a receiver holding either verifies it."""
    timeout_s: float = 10.0
    backoff_base_ms: int = 5_000
    max_backoff_ms: int = 6 * 3_600_000
    give_up_ms: int = 3 * 86_400_000
    batch: int = 32
    concurrency: int = 8

    def __post_init__(self) -> None:
        if not self.url:
            raise ConfigurationError("events out need an endpoint", variable=URL_VARIABLE)
        # Refuses anything but whsec_ + base64 of at least 24 bytes, never repeating it.
        secrets = split_secrets(self.secret)
        for entry, secret in enumerate(secrets, start=1):
            if not secret.startswith("whsec_"):  # the form README documents, prefix included
                raise ConfigurationError(
                    "the whsec_ prefix is missing (whsec_ + base64)",
                    variable=SECRET_VARIABLE,
                    entry=entry,
                )
        StandardWebhooks(secrets, variable=SECRET_VARIABLE)

    @property
    def lease_ms(self) -> int:
        """How long a pass's claims hold: longer than the pass can take (its events go
        ``concurrency`` at a time, each attempt bounded by ``timeout_s`` per phase of the
        request: connect, write, read), so another worker never sends them meanwhile; a
        worker that dies mid-pass holds them no longer than this."""
        rounds = -(-self.batch // self.concurrency)
        return rounds * 4 * int(self.timeout_s * 1000) + 5_000


def backoff_ms(attempt: int, *, base_ms: int, cap_ms: int, rng: Callable[[], float]) -> int:
    """The wait after failed attempt ``attempt`` (1, 2, …): ``base_ms`` doubling, at most
    ``cap_ms``, jittered to between half and all of it ("equal jitter"), so a receiver
    coming back is not hit by every event at once.

    Hand-written rather than tenacity's: the wait is not slept in a loop, it is stored as
    the row's ``next_attempt_at_ms``, so that it survives restarts and any worker takes the
    event up when it is due."""
    ceiling = min(cap_ms, base_ms * 2 ** min(attempt - 1, 40))
    return max(1, int(ceiling / 2 + rng() * ceiling / 2))


@dataclass(slots=True)
class DeliveryPass:
    """What one :meth:`EventsOut.deliver_due` did."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0
    lost_claims: int = 0

    @property
    def sent(self) -> int:
        return self.delivered + self.retried + self.dead


class EventsOut:
    """Delivers one ledger's outbox to ``config.url``. ``clock`` (epoch ms) decides what is
    due and when to retry (tests move it instead of sleeping); the ``webhook-timestamp``
    is always the wall clock, which receivers hold to a five-minute window."""

    def __init__(
        self,
        outbox: Outbox,
        config: EventsOutConfig,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], int] = now_ms,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._outbox = outbox
        self._config = config
        self._signers = [standardwebhooks.Webhook(key) for key in split_secrets(config.secret)]
        self._client = client or httpx.Client(timeout=config.timeout_s, follow_redirects=False)
        self._clock = clock
        self._rng = rng
        self._token = f"events-{uuid.uuid4().hex}"

    def close(self) -> None:
        self._client.close()

    def deliver_due(self, *, max_passes: int = 1000) -> DeliveryPass:
        """Send every event due now, pass after pass (each pass takes one event per account)
        until none is due, or ``max_passes``. Returns what was done."""
        done = DeliveryPass()
        with ThreadPoolExecutor(max_workers=self._config.concurrency) as pool:
            for _ in range(max_passes):
                due = self._outbox.claim_due(
                    now_ms=self._clock(),
                    lease_ms=self._config.lease_ms,
                    token=self._token,
                    limit=self._config.batch,
                )
                if not due:
                    break
                errors = pool.map(self._send, due)
                ended = [self._ended(e, err) for e, err in zip(due, errors, strict=True)]
                settled = self._outbox.settle(ended, token=self._token)
                for attempt, kept in zip(ended, settled, strict=True):
                    self._count(attempt, kept, done)
        return done

    def _send(self, event: DueEvent) -> str | None:
        """Post ``event`` once: None when the endpoint answered 2xx, else why not (never
        the secret, never the endpoint's body)."""
        signed_at = datetime.fromtimestamp(time.time(), tz=UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "Refundry-Events/1",
            "webhook-id": event.webhook_id,
            "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": " ".join(
                signer.sign(event.webhook_id, signed_at, event.body) for signer in self._signers
            ),
        }
        try:
            response = self._client.post(
                self._config.url, content=event.body.encode("utf-8"), headers=headers
            )
        except httpx.TimeoutException as exc:
            return f"timeout ({type(exc).__name__})"
        except httpx.HTTPError as exc:
            return f"unreachable ({type(exc).__name__})"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def _ended(self, event: DueEvent, error: str | None) -> Attempt:
        """How an attempt ended: delivered, retried after its backoff (never past the last
        chance, ``give_up_ms`` after the first attempt), or dead once that has passed."""
        at = self._clock()
        if error is None:
            return Attempt(event, "delivered", at)
        if at - event.first_attempt_at_ms >= self._config.give_up_ms:
            reason = f"{EventNotDelivered.__name__} attempts={event.attempt} last={error}"
            return Attempt(event, "dead", at, reason)
        wait = backoff_ms(
            event.attempt,
            base_ms=self._config.backoff_base_ms,
            cap_ms=self._config.max_backoff_ms,
            rng=self._rng,
        )
        last_chance = event.first_attempt_at_ms + self._config.give_up_ms
        return Attempt(event, "retry", min(at + wait, last_chance), error)

    def _count(self, attempt: Attempt, kept: bool, done: DeliveryPass) -> None:
        event = attempt.event
        if not kept:
            done.lost_claims += 1  # the lease ran out and another worker took the event
        elif attempt.state == "delivered":
            done.delivered += 1
        elif attempt.state == "dead":
            done.dead += 1
            log.error(
                "event %s (%s) dead-lettered: %s", event.webhook_id, event.type, attempt.error
            )
        else:
            done.retried += 1
            log.warning(
                "event %s (%s) attempt %d: %s; next at %s",
                event.webhook_id,
                event.type,
                event.attempt,
                attempt.error,
                iso_ms(attempt.at_ms),
            )
