"""Each webhook route's verifier, transport-agnostic: ``(raw body, headers) -> Delivery``,
built from the route's secrets (``IngressConfig``) by :func:`build_routes`.

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
A route whose deliveries apply only through the provider's API needs its key
(:data:`NEEDS_API_KEY`), or does not start.

**Hints.** The Suno-style signature covers the task id and the time, not the body: a
verified callback only says "look at task X now". The route fetches the task through the
provider's status API and keeps only that answer; the callback's body is never kept. Any
provider whose callbacks are unsigned or do not sign the body is served the same way
(:func:`hint_route`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from handlers.fal_signatures import FalKeys, FalSignatures
from handlers.webhook_verification import (
    BodyMalformed,
    SignatureRefused,
    StandardWebhooks,
    SunoSignatures,
    json_object,
    stripe_refusal,
    stripe_secrets,
    verify_stripe,
)
from ledger import Ledger
from ledger.errors import ConfigurationError, InvalidJobId
from providers import openai
from providers import stripe as stripe_events
from providers.job_ids import check_job_id
from providers.stripe_subscriptions import parse_subscription_event

__all__ = [
    "INLINE_ROUTES",
    "NEEDS_API_KEY",
    "ROUTES",
    "Delivery",
    "Fetch",
    "IngressConfig",
    "RouteVerifier",
    "build_routes",
    "hint_route",
]

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


RouteVerifier = Callable[[bytes, Mapping[str, str]], Delivery | None]
"""``(body, headers with lower-case names) -> the verified delivery`` (``None``: verified
but of no use), or raises ``DeliveryRefused``."""

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
    kind = payload.get("type")  # any JSON: a list or an object is unhashable, and no type
    return payload.get("object") != "event" or (isinstance(kind, str) and kind in openai.EVENTS)


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
