"""The webhook ingress, transport-agnostic: a delivery (route, raw body, headers) is verified
with its provider's own scheme, kept in the inbox and enqueued, or refused.

| route | scheme | kept as | delivery id |
| --- | --- | --- | --- |
| ``stripe`` | Stripe-Signature (``stripe``) | a payment event | the event id |
| ``openai`` | Standard Webhooks | a result (a thin ``video.*`` event) | ``webhook-id`` |
| ``kling`` | Standard Webhooks | a result (the task) | ``webhook-id`` |
| ``replicate`` | Standard Webhooks | a result (the prediction) | ``webhook-id`` |
| ``fal`` | Ed25519 over fal's JWKS | a result (the webhook body) | fal's request id |
| ``suno`` | kie.ai HMAC of task id, time | the task **fetched back** | job and outcome |

A route whose secret is unset does not exist (``RouteDisabled``); fal's needs no secret
(its keys are public) but can be limited to the fal accounts in ``FAL_WEBHOOK_USER_IDS``.

**Hints.** The Suno-style signature covers the task id and the time, not the body: a
verified callback only says "look at task X now". The route fetches the task through the
provider's status API and keeps only that answer; the callback's body is never kept. Any
provider whose callbacks are unsigned or do not sign the body is served the same way
(:func:`hint_route`).

Nothing unverified is kept, and nothing verified either unless it is within the payload
rule every door into Refundry applies (the ``payload_rule`` the transport passes:
``workers.validation.payload``) and the job id a worker will put into a status URL has the
shape its provider documents (``providers.job_ids``); else ``BodyMalformed``. A delivery is
answered as accepted only once its inbox row is committed: a database error propagates to
the transport, which answers "try again".
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

from handlers.fal_signatures import FalKeys, FalSignatures
from handlers.intake import Enqueue, GroupCommit, LaterEnqueue, announce, new_event
from handlers.thin_events import THIN_EVENTS
from handlers.webhook_verification import (
    BodyMalformed,
    BodyTooLarge,
    DeliveryRefused,
    RouteDisabled,
    SignatureRefused,
    SignatureUnreadable,
    StandardWebhooks,
    SunoSignatures,
    json_object,
    stripe_refusal,
    stripe_secrets,
    verify_stripe,
)
from ledger import Ledger
from ledger.errors import ConfigurationError, InvalidJobId, InvalidPayload
from ledger.inbox import NewEvent, Recorded
from providers import openai
from providers import stripe as stripe_events
from providers.job_ids import check_job_id
from providers.stripe_subscriptions import parse_subscription_event

__all__ = [
    "INLINE_ROUTES",
    "NEEDS_API_KEY",
    "ROUTES",
    "Accepted",
    "Delivery",
    "Fetch",
    "Ingress",
    "IngressConfig",
    "PayloadRule",
    "RouteVerifier",
    "build_routes",
    "hint_route",
    "refusal",
]

log = logging.getLogger(__name__)

ROUTES: Final = ("stripe", "openai", "kling", "replicate", "fal", "suno")


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified delivery, as the inbox keeps it."""

    kind: str
    """``result`` or ``payment``: the actor that applies it."""
    provider: str
    payload: dict[str, Any]
    webhook_id: str | None = None
    operation: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """What became of an accepted delivery."""

    inbox_id: str | None
    """The inbox row that holds the event; ``None`` for an event type Refundry has no use
    for (verified, acknowledged, not kept)."""
    redelivery: bool = False


RouteVerifier = Callable[[bytes, Mapping[str, str]], Delivery | None]
"""``(body, headers with lower-case names) -> the verified delivery`` (``None``: verified
but of no use), or raises ``DeliveryRefused``."""

PayloadRule = Callable[[object], dict[str, Any]]
"""``payload -> the payload as kept``, or raises ``InvalidPayload``: the rule every door
applies (``workers.validation.payload``)."""

Fetch = Callable[[str, str, str | None], Mapping[str, Any]]
"""``(provider, job id, operation) -> the job as the provider's status API answers``
(``providers.pollers.Poller.poll``)."""


@dataclass(frozen=True, slots=True)
class IngressConfig:
    """Each route's secrets (several: a rotation) and fal's key source."""

    stripe: tuple[str, ...] = ()
    openai: tuple[str, ...] = ()
    kling: tuple[str, ...] = ()
    replicate: tuple[str, ...] = ()
    suno: tuple[str, ...] = ()
    fal_jwks_url: str = ""
    """Empty: the fal route is disabled."""
    fal_user_ids: tuple[str, ...] = ()
    api_keys: frozenset[str] = frozenset()
    """The provider API keys that are set, by variable (:data:`NEEDS_API_KEY`)."""


NEEDS_API_KEY: Final = {
    "stripe": "STRIPE_API_KEY",
    "openai": "OPENAI_API_KEY",
    "suno": "SUNO_API_KEY",
}
"""The routes whose deliveries can only be applied through their provider's API, and the
key that needs: every Stripe event is confirmed at Stripe before it moves money, an OpenAI
video event names a video that is fetched, a Suno-style hint names a task that is fetched.
Such a route, its secret set and its key not, would keep what no worker can apply (dead
letters later): :func:`build_routes` refuses it at start instead. Kling, Replicate and fal
deliveries carry the whole result and need no key."""


def _stripe_route(secrets: tuple[str, ...]) -> RouteVerifier:
    secrets = stripe_secrets(secrets, variable="STRIPE_WEBHOOK_SECRET")

    def verify(body: bytes, headers: Mapping[str, str]) -> Delivery:
        header = headers.get("stripe-signature")
        try:
            event = verify_stripe(body, header, secrets)
            stripe_events.parse_event(event)  # a known type must be readable as that type
            parse_subscription_event(event)
        except stripe_events.SignatureInvalid as exc:
            raise SignatureRefused(stripe_refusal(header)) from exc
        except stripe_events.PayloadUnreadable as exc:
            raise BodyMalformed("not a readable Stripe event") from exc
        return Delivery("payment", "stripe", event)

    return verify


def _openai_event_wanted(payload: Mapping[str, Any]) -> bool:
    """OpenAI posts every event type a project subscribed to; only video events are ours."""
    return payload.get("object") != "event" or payload.get("type") in openai.EVENTS


def _standard_route(
    provider: str,
    secrets: tuple[str, ...],
    wanted: Callable[[Mapping[str, Any]], bool] = lambda payload: True,
) -> RouteVerifier:
    hooks = StandardWebhooks(secrets, variable=f"{provider.upper()}_WEBHOOK_SECRET")

    def verify(body: bytes, headers: Mapping[str, str]) -> Delivery | None:
        webhook_id, payload = hooks.verify(body, headers)
        if not wanted(payload):
            return None
        return Delivery("result", provider, payload, webhook_id=webhook_id)

    return verify


def _fal_route(signatures: FalSignatures) -> RouteVerifier:
    def verify(body: bytes, headers: Mapping[str, str]) -> Delivery:
        request_id = signatures.verify(body, headers)
        return Delivery("result", "fal", json_object(body), webhook_id=request_id)

    return verify


def hint_route(
    provider: str,
    verify_job_id: Callable[[bytes, Mapping[str, str]], str],
    fetch: Fetch,
    ledger: Ledger,
) -> RouteVerifier:
    """A route for callbacks whose signature does not cover the body: ``verify_job_id``
    proves only which job the provider named; the job is fetched from the provider's API
    (with the operation charged for it, which picks the endpoint) and that answer is kept.
    A verified job id of a shape the provider never sends is ``BodyMalformed`` (no retry
    could fix it; nothing is fetched). A fetch error propagates (the provider retries; the
    stuck sweep polls regardless)."""

    def verify(body: bytes, headers: Mapping[str, str]) -> Delivery:
        job_id = verify_job_id(body, headers)
        try:
            check_job_id(provider, job_id)  # before it reaches the ledger or a URL
        except InvalidJobId:
            raise BodyMalformed("the callback names an id of no documented shape") from None
        charged = ledger.generation_by_job(provider, job_id)
        operation = charged.operation if charged is not None else None
        answer = fetch(provider, job_id, operation)
        return Delivery("result", provider, dict(answer), operation=operation)

    return verify


def build_routes(
    config: IngressConfig,
    ledger: Ledger,
    *,
    fetch: Fetch | None = None,
    fal_keys: FalKeys | None = None,
) -> dict[str, RouteVerifier]:
    """The enabled routes. ``fetch`` serves the Suno-style hint route (required when its
    secret is set); ``fal_keys`` replaces the key set read from ``config.fal_jwks_url``.
    Raises ``ConfigurationError`` naming the variable (never its value) for a secret that
    cannot be used, or for a route whose API key (:data:`NEEDS_API_KEY`) is unset."""
    for route, key in NEEDS_API_KEY.items():
        if getattr(config, route) and key not in config.api_keys:
            raise ConfigurationError(
                f"/webhooks/{route} cannot apply what it keeps without its provider's API",
                variable=key,
            )
    routes: dict[str, RouteVerifier] = {}
    if config.stripe:
        routes["stripe"] = _stripe_route(config.stripe)
    if config.openai:
        routes["openai"] = _standard_route("openai", config.openai, _openai_event_wanted)
    for provider in ("kling", "replicate"):
        secrets = getattr(config, provider)
        if secrets:
            routes[provider] = _standard_route(provider, secrets)
    if config.fal_jwks_url or fal_keys is not None:
        keys = fal_keys or FalKeys(config.fal_jwks_url)
        routes["fal"] = _fal_route(FalSignatures(keys, user_ids=config.fal_user_ids))
    if config.suno:
        if fetch is None:
            raise ConfigurationError(
                "a Suno-style callback is only a hint: the task must be fetched back",
                variable="SUNO_API_KEY",
            )
        signatures = SunoSignatures(config.suno, variable="SUNO_WEBHOOK_SECRET")
        routes["suno"] = hint_route("suno", signatures.verify, fetch, ledger)
    return routes


INLINE_ROUTES: Final = frozenset({"stripe", "openai", "kling", "replicate"})
"""Routes verified by arithmetic alone (an HMAC and a parse: no I/O)."""


class Ingress:
    """Verify, keep, enqueue. Thread-safe; one per process.

    Deliveries that arrive together share their inbox transaction
    (``handlers.intake.GroupCommit``) and are enqueued from a thread of their own, unless
    ``group_commit`` is off. :meth:`deliver` does it all, blocking; a transport with an
    event loop can instead call :meth:`verify`, wait on :meth:`submit`'s future and finish
    with :meth:`accepted`.
    """

    def __init__(
        self,
        ledger: Ledger,
        enqueue: Enqueue,
        routes: Mapping[str, RouteVerifier],
        *,
        payload_rule: PayloadRule,
        group_commit: bool = True,
    ) -> None:
        self.ledger = ledger
        self.routes = dict(routes)
        self._payload_rule = payload_rule
        self._enqueue: Enqueue = LaterEnqueue(enqueue) if group_commit else enqueue
        self._group = GroupCommit(ledger.inbox, on_kept=self._announce) if group_commit else None
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def enabled(self, route: str) -> bool:
        return route in self.routes

    def close(self) -> None:
        """Keep what is waiting for the group commit, send what is waiting for the broker."""
        if self._group is not None:
            self._group.close()
        if isinstance(self._enqueue, LaterEnqueue):
            self._enqueue.close()

    def inline(self, route: str) -> bool:
        """True when the route's verification does no I/O (cheap enough for an event loop)."""
        return route in INLINE_ROUTES

    def deliver(self, route: str, body: bytes, headers: Mapping[str, str]) -> Accepted:
        """Verify the delivery and keep it (``headers`` with lower-case names), blocking until
        its row is committed. Raises ``DeliveryRefused`` (nothing kept); any other error
        means nothing was kept either and the sender should try again."""
        event = self.verify(route, body, headers)
        if event is None:
            return Accepted(None)
        return self.accepted(route, event, self.submit(event).result())

    def verify(self, route: str, body: bytes, headers: Mapping[str, str]) -> NewEvent | None:
        """The inbox event of a verified delivery; ``None`` for one of no use (acknowledged,
        not kept). Raises ``DeliveryRefused``."""
        verify = self.routes.get(route)
        try:
            if verify is None:
                raise RouteDisabled(route=route)
            delivery = verify(body, headers)
            if delivery is not None:
                delivery = self._within_the_rule(delivery)
        except DeliveryRefused as refused:
            self.count(route, refusal(refused))
            raise
        if delivery is None:
            self.count(route, "ignored")
            return None
        return new_event(
            kind=delivery.kind,
            provider=delivery.provider,
            payload=delivery.payload,
            operation=delivery.operation,
            webhook_id=delivery.webhook_id,
        )

    def _within_the_rule(self, delivery: Delivery) -> Delivery:
        """``delivery`` with its payload as the payload rule keeps it, once the job id a
        thin event names (fetched by a worker later) has its documented shape. Raises
        ``BodyMalformed``: verified, but nothing any door would keep."""
        try:
            payload = self._payload_rule(delivery.payload)
            job_id_of = THIN_EVENTS.get(delivery.provider)
            job_id = job_id_of(payload) if job_id_of is not None else None
            if job_id is not None:
                check_job_id(delivery.provider, job_id)
        except (InvalidPayload, InvalidJobId) as exc:
            raise BodyMalformed("outside the payload rule", error=type(exc).__name__) from None
        return dataclasses.replace(delivery, payload=payload)

    def submit(self, event: NewEvent) -> Future[Recorded]:
        """Keep ``event``: the future is done once its row is committed and the event
        enqueued (or has the error)."""
        if self._group is not None:
            return self._group.submit(event)
        future: Future[Recorded] = Future()
        try:
            [recorded] = self.ledger.inbox.record_many([event])
        except Exception as exc:
            future.set_exception(exc)
            return future
        self._announce(event, recorded)
        future.set_result(recorded)
        return future

    def _announce(self, event: NewEvent, recorded: Recorded) -> None:
        announce(self._enqueue, event.kind, recorded)

    def accepted(self, route: str, event: NewEvent, recorded: Recorded) -> Accepted:
        """Count a kept event (it was enqueued, unless a redelivery, when it was kept)."""
        self.count(route, "accepted" if recorded.new else "redelivery")
        return Accepted(recorded.id, redelivery=not recorded.new)

    def count(self, route: str, outcome: str) -> None:
        with self._lock:
            self._counts[(route, outcome)] += 1

    def counts(self) -> dict[tuple[str, str], int]:
        """``(route, outcome) -> deliveries`` since start: ``accepted``, ``redelivery``,
        ``ignored``, ``unavailable``, ``disconnected`` (the sender hung up mid-body), and each
        refusal (:func:`refusal`)."""
        with self._lock:
            return dict(self._counts)


def refusal(refused: DeliveryRefused) -> str:
    """A refusal's label in logs and counts: ``disabled``, ``too_large``, ``malformed``, or
    why the signature was refused (``missing``, ``forged``, ``stale``, ``future``,
    ``unreadable``, ``foreign_account``)."""
    if isinstance(refused, SignatureRefused | SignatureUnreadable):
        return refused.why
    if isinstance(refused, RouteDisabled):
        return "disabled"
    if isinstance(refused, BodyTooLarge):
        return "too_large"
    return "malformed"
