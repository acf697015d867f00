"""The per-process objects every entry point shares: settings, ledger, refund policy, the
provider API client that fetches the job a thin webhook event names, and the status pollers
of the stuck-generation sweep.

Built lazily, once per process (a forked worker builds its own), from the environment.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from handlers.deadlines import DeadlinePolicy
from handlers.generation import RefundPolicy
from handlers.packs import PackCatalog, PaymentPolicy
from handlers.policy_rules import PolicyBook, PolicyVersion
from handlers.stuck_sweep import StatusPolls
from handlers.subscriptions import SubscriptionGateway
from handlers.thin_events import JobFetcher
from ledger import Ledger, database_location, open_ledger
from ledger.clock import now_ms
from ledger.errors import ConfigurationError
from providers.kling import KlingPoller
from providers.openai_api import VideosClient
from providers.pollers import HTTPOptions, Poller
from providers.replicate import ReplicatePoller
from providers.stripe_api import StripeAPI
from providers.suno import SunoPoller
from workers import pg_pools
from workers.budgets import Budgets
from workers.policy_settings import check_budgets, load_policy, settings_under
from workers.settings import Settings

__all__ = [
    "budgets",
    "catalog",
    "deadlines",
    "enqueue",
    "fetch_job",
    "in_force",
    "job_fetchers",
    "ledger",
    "ledger_location",
    "payment_gateway",
    "payment_policy",
    "policy",
    "policy_book",
    "reset",
    "settings",
    "status_options",
    "status_polls",
    "stripe_api",
    "videos_client",
]

log = logging.getLogger(__name__)

_lock = threading.Lock()


def settings() -> Settings:
    """The process's settings, the refund rules those of the policy version in force now
    (:func:`in_force`; ``workers.policy_settings``); ``ConfigurationError`` when one is
    unusable (``PolicyError`` for the policy file, naming key and line) or when the worst
    cases of any version would refund later than its promise (``workers.budgets``)."""
    return _settings_under(in_force().effective_ms)


def policy_book() -> PolicyBook:
    """The process's refund policy: every version, each judging what was charged or paid
    while it was in force."""
    return _loaded()[0]


def in_force(at_ms: int | None = None) -> PolicyVersion:
    """The policy version in force at ``at_ms`` (ms since the epoch; default now): the one
    place a process chooses it. Chosen per call, never once at start: a web, worker or
    scheduler process that outlives a version's effective time charges and decides under
    the new version from that moment on (deadlines, charge mode, outcomes, packs)."""
    return policy_book().at(now_ms() if at_ms is None else at_ms)


@cache
def _loaded() -> tuple[PolicyBook, Settings]:
    read = Settings.from_env()
    book = load_policy(os.environ, read)
    check_budgets(read, book)
    return book, read


@cache
def _settings_under(effective_ms: int) -> Settings:
    book, read = _loaded()
    return settings_under(read, book.at(effective_ms))


def budgets() -> Budgets:
    """Every time budget, derived from :func:`settings`."""
    return Budgets(settings())


def status_options() -> HTTPOptions:
    """The retry budget and timeout of every status API client."""
    s = settings()
    return {
        "max_attempts": s.status_attempts,
        "max_wait_s": float(s.status_max_wait_s),
        "timeout_s": float(s.status_timeout_s),
    }


_ledger: Ledger | None = None
_ledgers: dict[str, Ledger] = {}


def ledger(*, create: bool = True, at_ms: int | None = None) -> Ledger:
    """The process's ledger; migrations are applied on first open.

    With ``create=False`` (read-only commands) a ledger that does not exist yet is never
    created: ``LedgerNotFound`` names where it was looked for. ``LedgerUnavailable`` when
    its database cannot be reached. Its entries carry the name of the policy version in
    force at ``at_ms`` (default now; :func:`in_force`).
    """
    global _ledger
    with _lock:
        if _ledger is None:
            s = settings()
            _ledger = open_ledger(
                s.database_url,
                policy_version=s.policy_version,
                pg_schema=s.pg_schema,
                create=create,
                max_connections=s.pg_pool_size,
                application_name=pool_name(),
            )
        name = in_force(at_ms).name
        if name not in _ledgers:  # one per version, built once
            _ledgers[name] = _ledger.under(name)
        return _ledgers[name]


_pool_name: str | None = None


def pool_name() -> str:
    """The ``application_name`` of this process's PostgreSQL pool (``workers.pg_pools``)."""
    global _pool_name
    if _pool_name is None:
        _pool_name = pg_pools.application_name(settings().pg_pool_size)
    return _pool_name


def enqueue(kind: str, inbox_id: str) -> None:
    """Send an inbox event to the workers (``workers.actors.enqueue_event``). The broker, an
    embedded Redis perhaps, is built on the first call only: a command with nothing to
    enqueue starts none."""
    from workers.actors import enqueue_event

    enqueue_event(kind, inbox_id)


def ledger_location() -> str:
    """Where this process's ledger is (``DATABASE_URL``, else the SQLite file under
    ``REFUNDRY_HOME``), without a password; nothing is opened or created."""
    s = settings()
    return database_location(s.database_url, pg_schema=s.pg_schema)


def policy() -> RefundPolicy:
    """Refunds judged by the version in force when each generation was charged."""
    return RefundPolicy(policy_book(), reread=_reread_policy)


def _reread_policy() -> PolicyBook:
    """The policy file read again (a version named by a charge this process's book lacks)."""
    return load_policy(os.environ, Settings.from_env())


_videos: VideosClient | None = None


def videos_client() -> VideosClient:
    """The process's OpenAI Videos API client; ``ConfigurationError`` without an API key."""
    global _videos
    with _lock:
        if _videos is None:
            s = settings()
            if not s.openai_api_key:
                raise ConfigurationError(
                    "a thin webhook event cannot be fetched without an API key",
                    variable="OPENAI_API_KEY",
                )
            _videos = VideosClient(s.openai_api_base, s.openai_api_key, **status_options())
        return _videos


def fetch_job(provider: str, job_id: str) -> Mapping[str, Any]:
    """The full job a thin webhook event names (``handlers.thin_events.JobFetcher``)."""
    if provider != "openai":
        raise ConfigurationError("no job API client for this provider", provider=provider)
    return videos_client().retrieve(job_id)


_pollers: dict[str, Poller] = {}


def _poller(build: Callable[[], Poller], name: str) -> Poller:
    with _lock:
        if name not in _pollers:
            _pollers[name] = build()
        return _pollers[name]


def job_fetchers() -> dict[str, JobFetcher]:
    """The providers whose status API this process can poll (the key is configured).

    A poller also takes the generation's operation (``handlers.stuck_sweep.OperationFetcher``).
    """
    s = settings()
    fetchers: dict[str, JobFetcher] = {}
    if s.openai_api_key:
        fetchers["openai"] = fetch_job
    if s.replicate_api_token:
        fetchers["replicate"] = _poller(
            lambda: ReplicatePoller(
                s.replicate_api_token, s.replicate_api_base, **status_options()
            ),
            "replicate",
        )
    if s.suno_api_key:
        fetchers["suno"] = _poller(
            lambda: SunoPoller(s.suno_api_key, s.suno_api_base, **status_options()), "suno"
        )
    if s.kling_access_key:
        fetchers["kling"] = _poller(
            lambda: KlingPoller(
                s.kling_access_key, s.kling_secret_key, s.kling_api_base, **status_options()
            ),
            "kling",
        )
    return fetchers


_status_polls: StatusPolls | None = None


def status_polls() -> StatusPolls:
    """This process's status polls: at most ``REFUNDRY_POLL_CONCURRENCY`` at once, whatever
    the number of stuck sweeps that started them."""
    global _status_polls
    with _lock:
        if _status_polls is None:
            _status_polls = StatusPolls(settings().poll_concurrency)
        return _status_polls


def deadlines(at_ms: int | None = None) -> DeadlinePolicy:
    """The stuck-generation deadlines of the version in force at ``at_ms`` (default now)."""
    return _deadlines(in_force(at_ms).effective_ms)


@cache
def _deadlines(effective_ms: int) -> DeadlinePolicy:
    return DeadlinePolicy.from_json(_settings_under(effective_ms).deadlines_json)


_stripe: StripeAPI | None = None


def stripe_api() -> StripeAPI:
    """The process's Stripe client; ``ConfigurationError`` without ``STRIPE_API_KEY``."""
    global _stripe
    with _lock:
        if _stripe is None:
            s = settings()
            _stripe = StripeAPI(s.stripe_api_key, base=s.stripe_api_base)
        return _stripe


def _unconfirmable(what: str) -> ConfigurationError:
    return ConfigurationError(f"{what} needs the payment provider's API", variable="STRIPE_API_KEY")


class _NoPaymentGateway:
    """Stands in when ``STRIPE_API_KEY`` is unset: nothing can be confirmed at Stripe, so every
    payment event that could move money is refused loudly (a permanent ``ConfigurationError``,
    dead-lettered with its reason) at its first call, the confirmation; so is every refund
    or read. Events that move nothing as posted (ignored types) still pass."""

    def retrieve(self, kind: str, object_id: str) -> dict[str, Any]:
        raise _unconfirmable("confirming a payment event")

    def refund_payment(
        self, payment_intent: str, *, amount: int | None, reason: str, idempotency_key: str
    ) -> dict[str, Any]:
        raise _unconfirmable("a refund")

    def invoice_payment_intents(self, invoice_id: str) -> list[str]:
        raise _unconfirmable("an invoice's payment")

    def checkout_line_items(self, session_id: str) -> list[dict[str, Any]]:
        raise _unconfirmable("a session's line items")

    def checkout_session_of(self, payment_intent: str) -> dict[str, Any] | None:
        raise _unconfirmable("a payment's session")

    def retrieve_payment_intent(self, payment_intent: str) -> dict[str, Any]:
        raise _unconfirmable("a payment")

    def charge_refunds(self, charge_id: str) -> list[dict[str, Any]]:
        raise _unconfirmable("a charge's refunds")


def payment_gateway() -> SubscriptionGateway:
    return stripe_api() if settings().stripe_api_key else _NoPaymentGateway()


def catalog() -> PackCatalog:
    """The pack catalog of the version in force now."""
    return _catalog(in_force().effective_ms)


@cache
def _catalog(effective_ms: int) -> PackCatalog:
    return PackCatalog.from_json(_settings_under(effective_ms).packs_json)


def payment_policy() -> PaymentPolicy:
    """The payment rules of the version in force now."""
    return _payment_policy(in_force().effective_ms)


@cache
def _payment_policy(effective_ms: int) -> PaymentPolicy:
    s = _settings_under(effective_ms)
    return PaymentPolicy(
        landing_window_ms=s.landing_window_s * 1000,
        unlanded_action=s.unlanded_action,
        duplicate_window_ms=s.duplicate_window_s * 1000,
        fraud_action=s.fraud_action,
    )


def reset() -> None:
    """Forget the cached settings, ledger and API clients (the environment changed)."""
    global _ledger, _videos, _stripe, _status_polls
    with _lock:
        if _status_polls is not None:
            _status_polls.close()
        if _ledger is not None:
            _ledger.db.close()
        if _videos is not None:
            _videos.close()
        if _stripe is not None:
            _stripe.close()
        for poller in _pollers.values():
            poller.close()
        _pollers.clear()
        _ledgers.clear()
        _ledger = _videos = _stripe = _status_polls = None
        global _pool_name
        _pool_name = None  # a new pool, sized by the new settings
        for cached in (_loaded, _settings_under, _deadlines, _catalog, _payment_policy):
            cached.cache_clear()
