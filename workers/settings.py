"""Refundry's settings: built once from the environment, each with an embedded default.

| variable | default | meaning |
| --- | --- | --- |
| ``DATABASE_URL`` | SQLite ``ledger.sqlite3`` in the home | ``postgresql://…`` in production (**) |
| ``REFUNDRY_PG_SCHEMA`` | ``refundry`` | PostgreSQL schema that holds the ledger's tables |
| ``REDIS_URL`` | unset: embedded ``redis-server`` | dramatiq's broker (**) |
| ``BROKER_URL`` | unset: ``REDIS_URL`` | ``redis://…`` or ``amqp://…`` (``workers.broker_urls``) |
| ``REFUNDRY_HOME`` | ``.refundry`` | local state: SQLite file, embedded Redis data |
| ``REFUNDRY_POLICY`` | unset: the shipped policy | refund policy file (``handlers.policy_file``) |
| ``REFUNDRY_POLICY_VERSION`` | ``2026-11-23`` | without a policy file: the shipped version's name |
| ``REFUNDRY_REFUND_CANCELLED`` | ``true`` | refund generations cancelled upstream |
| ``REFUNDRY_MAX_RETRIES`` | ``8`` | dramatiq retries before the dead-letter queue |
| ``REFUNDRY_MIN_BACKOFF_MS`` | ``1000`` | first retry delay (doubles, jittered) |
| ``REFUNDRY_MAX_BACKOFF_MS`` | ``300000`` | cap of one retry delay |
| ``REFUNDRY_INBOX_GRACE_MS`` | ``30000`` | unprocessed this long: enqueued again |
| ``REFUNDRY_INBOX_GIVE_UP_MS`` | ``21600000`` | still failing after 6 h: closed as dead |
| ``REFUNDRY_SWEEP_INTERVAL_S`` | ``10`` | how often the scheduler runs the inbox sweep |
| ``REFUNDRY_REFUND_SLA_MS`` | ``3600000`` | refund later than this: a breach |
| ``REFUNDRY_SLA_WARN_MS`` | ``2700000`` | an event unapplied this long raises an alert |
| ``REFUNDRY_DEADLINES`` | built in (``handlers/deadlines.py``) | stuck-generation deadlines |
| ``REFUNDRY_POLL_INTERVAL_S`` | ``60`` | how often a stuck generation is polled |
| ``REFUNDRY_POLL_BUDGET_S`` | ``20`` | a stuck sweep waits this long for its status polls |
| ``REFUNDRY_POLL_CONCURRENCY`` | ``8`` | status polls at once in a process, across sweeps |
| ``REFUNDRY_STUCK_BATCH`` | ``200`` | stuck sweep claims per batch (it goes on until none is due) |
| ``REFUNDRY_RESULT_BATCH`` | ``64`` | results settled per transaction (1: one per message) |
| ``REFUNDRY_STATUS_ATTEMPTS`` | ``5`` | attempts of one status API call |
| ``REFUNDRY_STATUS_TIMEOUT_S`` | ``10`` | timeout of one status API request |
| ``REFUNDRY_STATUS_MAX_WAIT_S`` | ``30`` | longest wait between two attempts |
| ``STRIPE_API_KEY`` | empty: no Stripe event applied, no reconciliation | secret: confirms events |
| ``STRIPE_API_BASE`` | ``https://api.stripe.com`` | a Stripe-compatible endpoint |
| ``STRIPE_WEBHOOK_SECRET`` | empty: ``/webhooks/stripe`` off | secret(s) (*): Stripe webhooks |
| ``REFUNDRY_PACKS`` | empty: no packs | JSON: price id → credits |
| ``UNLANDED_PACK_ACTION`` | ``complete`` | unlanded pack: ``complete`` or ``refund`` |
| ``REFUNDRY_LANDING_WINDOW_S`` | ``3600`` | how long a paid pack may take to land |
| ``REFUNDRY_DUPLICATE_WINDOW_S`` | ``600`` | same pack paid twice within it: refunded |
| ``REFUNDRY_FRAUD_ACTION`` | ``refund_and_revoke`` | on an early fraud warning (or ``alert``) |
| ``OPENAI_API_KEY`` | empty: thin Sora events refused | secret: fetches a thin event's video |
| ``OPENAI_API_BASE`` | ``https://api.openai.com/v1`` | OpenAI API base URL |
| ``REPLICATE_API_TOKEN`` | empty: Replicate jobs not polled | secret: polls predictions |
| ``REPLICATE_API_BASE`` | ``https://api.replicate.com`` | Replicate API base URL |
| ``SUNO_API_KEY`` | empty: Suno-style jobs not polled | secret: polls record-info |
| ``SUNO_API_BASE`` | ``https://api.sunoapi.org`` | a Suno-style API (sunoapi.org, kie.ai) |
| ``KLING_ACCESS_KEY`` | empty: Kling jobs not polled | signs the JWT with the secret key |
| ``KLING_SECRET_KEY`` | empty | secret: set with the access key, or neither |
| ``KLING_API_BASE`` | ``https://api-singapore.klingai.com`` | Kling API base URL |
| ``OPENAI_WEBHOOK_SECRET`` | empty: ``/webhooks/openai`` off | secret(s) (*): ``whsec_…`` |
| ``KLING_WEBHOOK_SECRET`` | empty: ``/webhooks/kling`` off | secret(s) (*): ``whsec_…`` |
| ``REPLICATE_WEBHOOK_SECRET`` | empty: ``/webhooks/replicate`` off | secret(s) (*): ``whsec_…`` |
| ``SUNO_WEBHOOK_SECRET`` | empty: ``/webhooks/suno`` off | secret(s) (*): kie.ai HMAC key |
| ``FAL_JWKS_URL`` | fal's documented JWKS | fal's public keys; ``off``: ``/webhooks/fal`` off |
| ``FAL_WEBHOOK_USER_IDS`` | empty: any fal account | fal accounts whose deliveries are accepted |
| ``REFUNDRY_MAX_BODY_BYTES`` | ``1048576`` | larger webhook bodies are refused (413) |
| ``REFUNDRY_INGRESS_DEADLINE_S`` | ``8`` | a delivery not kept by then is answered 503 |
| ``REFUNDRY_BODY_TIMEOUT_S`` | ``10`` | a webhook body not received by then: 408, closed |
| ``SENTRY_DSN`` | empty: Sentry off | secret: the project's DSN (``workers.sentry_setup``) |
| ``REFUNDRY_LOG_FORMAT`` | ``text`` | ``json``: one JSON object per log line (``workers.logs``) |
| ``REFUNDRY_OPS_TOKEN`` | empty: ops page off (404) | secret: ops page login, ``/metrics`` bearer |
| ``REFUNDRY_API_KEYS`` | empty: HTTP API ``/v1`` off (404) | secret(s) (*): API bearer keys |
| ``REFUNDRY_EVENTS_URL`` | empty: events kept, not sent | the platform's endpoint for events out |
| ``REFUNDRY_EVENTS_SECRET`` | empty | secret(s) (*): ``whsec_…`` signing events out |
| ``REFUNDRY_EVENTS_TIMEOUT_S`` | ``10`` | one delivery attempt's timeout |
| ``REFUNDRY_EVENTS_BACKOFF_MS`` | ``5000`` | first retry delay of an event (doubles, jittered) |
| ``REFUNDRY_EVENTS_MAX_BACKOFF_MS`` | ``21600000`` | cap of one event retry delay (6 h) |
| ``REFUNDRY_EVENTS_GIVE_UP_S`` | ``259200`` | an event failing this long (3 days): dead-lettered |
| ``REFUNDRY_EVENTS_CONCURRENCY`` | ``8`` | events in flight at once (one per account) |
| ``REFUNDRY_RABBITMQ_CONSUMER_TIMEOUT_MS`` | ``1800000`` | RabbitMQ's ``consumer_timeout`` |
| ``REFUNDRY_PG_POOL_SIZE`` | ``10`` | PostgreSQL connections per process (``workers.pg_pools``) |

(*) Webhook secrets may be comma-separated: during a rotation any one of them verifies.
So may the API keys: each at least 24 printable ASCII characters (``workers.api_keys``).
(**) Parsed before any driver sees it (``ledger.server_urls``): the password percent-encoded.

The refund rules (``REFUNDRY_REFUND_CANCELLED``, ``REFUNDRY_REFUND_SLA_MS``,
``REFUNDRY_DEADLINES``, ``REFUNDRY_PACKS``, ``UNLANDED_PACK_ACTION``, the landing and
duplicate windows, ``REFUNDRY_FRAUD_ACTION``) are the refund policy's (``REFUNDRY_POLICY``);
set, each overrides the version in force at start (``workers.policy_settings``).

Each whole-number setting is written in ASCII digits and lies in its range (inclusive):

| variable | range |
| --- | --- |
| ``REFUNDRY_MAX_RETRIES`` | 0 to 100 |
| ``REFUNDRY_MIN_BACKOFF_MS`` | 1 to 3600000 |
| ``REFUNDRY_MAX_BACKOFF_MS`` | 1 to 3600000 |
| ``REFUNDRY_INBOX_GRACE_MS`` | 0 to 86400000 |
| ``REFUNDRY_INBOX_GIVE_UP_MS`` | 1 to 2592000000 |
| ``REFUNDRY_SWEEP_INTERVAL_S`` | 1 to 86400 |
| ``REFUNDRY_REFUND_SLA_MS`` | 1 to 604800000 |
| ``REFUNDRY_SLA_WARN_MS`` | 0 to 604800000 |
| ``REFUNDRY_POLL_INTERVAL_S`` | 1 to 86400 |
| ``REFUNDRY_POLL_BUDGET_S`` | 1 to 3600 |
| ``REFUNDRY_POLL_CONCURRENCY`` | 1 to 256 |
| ``REFUNDRY_STUCK_BATCH`` | 1 to 10000 |
| ``REFUNDRY_RESULT_BATCH`` | 1 to 1000 |
| ``REFUNDRY_STATUS_ATTEMPTS`` | 1 to 100 |
| ``REFUNDRY_STATUS_TIMEOUT_S`` | 1 to 600 |
| ``REFUNDRY_STATUS_MAX_WAIT_S`` | 0 to 3600 |
| ``REFUNDRY_LANDING_WINDOW_S`` | 0 to 2592000 |
| ``REFUNDRY_DUPLICATE_WINDOW_S`` | 0 to 2592000 |
| ``REFUNDRY_MAX_BODY_BYTES`` | 1 to 67108864 |
| ``REFUNDRY_INGRESS_DEADLINE_S`` | 1 to 300 |
| ``REFUNDRY_BODY_TIMEOUT_S`` | 1 to 300 |
| ``REFUNDRY_EVENTS_TIMEOUT_S`` | 1 to 600 |
| ``REFUNDRY_EVENTS_BACKOFF_MS`` | 1 to 3600000 |
| ``REFUNDRY_EVENTS_MAX_BACKOFF_MS`` | 1 to 86400000 |
| ``REFUNDRY_EVENTS_GIVE_UP_S`` | 1 to 2592000 |
| ``REFUNDRY_EVENTS_CONCURRENCY`` | 1 to 256 |
| ``REFUNDRY_RABBITMQ_CONSUMER_TIMEOUT_MS`` | 60000 to 604800000 |
| ``REFUNDRY_PG_POOL_SIZE`` | 1 to 1000 |

Some settings bound others; a pair that breaks its bound is refused at start (naming the
variable that was set, the left one when both were):

| variable | must be | than |
| --- | --- | --- |
| ``REFUNDRY_SLA_WARN_MS`` | < | ``REFUNDRY_REFUND_SLA_MS`` |
| ``REFUNDRY_INBOX_GIVE_UP_MS`` | >= | ``REFUNDRY_REFUND_SLA_MS`` |

An alert raised no earlier than the breach warns of nothing; an inbox that gives up on an
event before the refund promise has run out abandons refunds it still owes.

``REFUNDRY_OPS_TOKEN`` is at least 24 printable ASCII characters without spaces (``openssl
rand -hex 32``). Text settings and secrets hold no control character (a secret set to
blanks only is refused too); the two actions are one of the values named above;
``REFUNDRY_PACKS`` and ``REFUNDRY_DEADLINES`` are read strictly (``handlers.setting_json``:
whole numbers only, at most 64 KiB); an API base URL is ``http(s)://host…`` without
credentials, query or fragment. Anything else is refused with ``ConfigurationError`` naming
the variable.

``refundry web`` checks them at start (``handlers.ingress_routes.build_routes``): Standard
Webhooks secrets are ``whsec_`` + base64 of at least 24 bytes, Stripe's ``whsec_…``, and a route
whose provider API key is unset does not start (exit 4, naming the variable).

Every time budget derives from these values (``workers.budgets``), and a settings object
whose worst cases would break the one-hour refund promise is refused. The default retry
budget (8 retries from 1 s doubling, each at most 5 min) dead-letters a message that keeps
failing after at most about 9 minutes of backoff: well inside the one-hour SLA. Its inbox
row stays pending and the sweep delivers it again, so an event that becomes applicable
later (its charge recorded late) is still applied without a human. A worker killed
mid-message is covered the same way: its event is re-sent by the sweep within grace +
interval (40 s by default), not after dramatiq's 60 s heartbeat lottery.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from handlers.fal_signatures import FAL_JWKS_URL
from handlers.packs import FRAUD_ACTIONS, UNLANDED_ACTIONS
from handlers.sla import REFUND_SLA_MS, WARN_MS
from ledger.audit import LANDING_WINDOW_MS
from ledger.backends import SUPPORTED_SCHEMES, database_location
from ledger.errors import ConfigurationError
from workers import setting_values
from workers.api_keys import api_keys_setting
from workers.broker_urls import select_broker
from workers.setting_values import REDIS_SCHEMES, WholeNumber, events_out_config, parse_redis_url

__all__ = ["REDIS_SCHEMES", "RELATIONS", "VARIABLES", "Settings", "WholeNumber", "parse_redis_url"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting, with its default: the only place a default is written."""

    database_url: str = field(repr=False)  # may carry a password
    redis_url: str | None = field(repr=False)
    home: Path
    pg_schema: str = "refundry"
    policy_file: str = ""
    policy_version: str = "2026-11-23"
    """The name of the policy version in force (``workers.policy_settings``)."""
    refund_cancelled: bool = True
    max_retries: int = 8
    min_backoff_ms: int = 1_000
    max_backoff_ms: int = 300_000
    inbox_grace_ms: int = 30_000
    inbox_give_up_ms: int = 6 * 3_600_000
    sweep_interval_s: int = 10
    refund_sla_ms: int = REFUND_SLA_MS
    sla_warn_ms: int = WARN_MS
    deadlines_json: str = ""
    poll_interval_s: int = 60
    poll_budget_s: int = 20
    poll_concurrency: int = 8
    stuck_batch: int = 200
    result_batch: int = 64
    status_attempts: int = 5
    status_timeout_s: int = 10
    status_max_wait_s: int = 30
    stripe_api_key: str = field(default="", repr=False)
    stripe_api_base: str = "https://api.stripe.com"
    stripe_webhook_secret: str = field(default="", repr=False)
    packs_json: str = ""
    unlanded_action: str = "complete"
    landing_window_s: int = LANDING_WINDOW_MS // 1000
    duplicate_window_s: int = 600
    fraud_action: str = "refund_and_revoke"
    openai_api_key: str = field(default="", repr=False)
    openai_api_base: str = "https://api.openai.com/v1"
    replicate_api_token: str = field(default="", repr=False)
    replicate_api_base: str = "https://api.replicate.com"
    suno_api_key: str = field(default="", repr=False)
    suno_api_base: str = "https://api.sunoapi.org"
    kling_access_key: str = field(default="", repr=False)
    kling_secret_key: str = field(default="", repr=False)
    kling_api_base: str = "https://api-singapore.klingai.com"
    openai_webhook_secret: str = field(default="", repr=False)
    kling_webhook_secret: str = field(default="", repr=False)
    replicate_webhook_secret: str = field(default="", repr=False)
    suno_webhook_secret: str = field(default="", repr=False)
    fal_jwks_url: str = FAL_JWKS_URL
    fal_webhook_user_ids: str = ""
    max_body_bytes: int = 1_048_576
    ingress_deadline_s: int = 8
    body_timeout_s: int = 10
    sentry_dsn: str = field(default="", repr=False)
    log_format: str = "text"
    ops_token: str = field(default="", repr=False)
    api_keys: str = field(default="", repr=False)
    events_url: str = ""
    events_secret: str = field(default="", repr=False)
    events_timeout_s: int = 10
    events_backoff_ms: int = 5_000
    events_max_backoff_ms: int = 6 * 3_600_000
    events_give_up_s: int = 3 * 86_400
    events_concurrency: int = 8
    amqp_url: str | None = field(default=None, repr=False)
    """``BROKER_URL=amqp://…``: RabbitMQ instead of Redis (``redis_url`` is then None)."""
    rabbitmq_consumer_timeout_ms: int = 1_800_000
    """RabbitMQ's ``consumer_timeout`` (its default, 30 min): ``workers.budgets``."""
    pg_pool_size: int = 10
    """PostgreSQL pool per process; ``refundry worker`` sets its processes' own."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every variable of :data:`VARIABLES`; an unusable value raises
        ``ConfigurationError`` naming its variable."""
        env = os.environ if env is None else env
        home = Path(setting_values.text(env, "REFUNDRY_HOME", ".refundry")).absolute()
        defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
        values: dict[str, Any] = {
            name: parse(env, variable, defaults[name])
            for variable, (name, parse) in VARIABLES.items()
        }
        if bool(values["kling_access_key"]) != bool(values["kling_secret_key"]):
            missing = "KLING_SECRET_KEY" if values["kling_access_key"] else "KLING_ACCESS_KEY"
            raise ConfigurationError("Kling needs both its access and secret key", variable=missing)
        _check_relations(env, values)
        events_out_config(values)  # a URL without a usable whsec_ secret (or back) is refused
        database_url = _database_url(env, home)
        redis_url, amqp_url = select_broker(env)
        return cls(
            database_url=database_url,
            redis_url=redis_url,
            home=home,
            amqp_url=amqp_url,
            **values,
        )


def _database_url(env: Mapping[str, str], home: Path) -> str:
    """``DATABASE_URL`` as written, or the SQLite ledger in ``home`` when it is unset. A value
    that is blank or not a URL (a bare host name, a file name) is refused naming the variable:
    taken as a SQLite file name, it would give each host a private ledger of its own."""
    url = env.get("DATABASE_URL")
    if url is None:
        return f"sqlite:///{home / 'ledger.sqlite3'}"
    database_location(url)  # refuses a URL that cannot be used, never repeating it
    if "://" not in url:
        raise ConfigurationError(
            "DATABASE_URL is blank or not a URL (postgresql://…, or sqlite:///path)",
            variable="DATABASE_URL",
            supported=", ".join(SUPPORTED_SCHEMES),
        )
    return url


_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _check_relations(env: Mapping[str, str], values: Mapping[str, Any]) -> None:
    """``ConfigurationError`` for the first pair of :data:`RELATIONS` that disagrees, naming
    the variable of the pair that was set (the left one when both, or neither, were)."""
    for left, relation, right in RELATIONS:
        a, b = values[VARIABLES[left][0]], values[VARIABLES[right][0]]
        if _COMPARE[relation](a, b):
            continue
        named = (
            right if (env.get(right) or "").strip() and not (env.get(left) or "").strip() else left
        )
        raise ConfigurationError(f"{left} must be {relation} {right} ({a} and {b})", variable=named)


Parse = Callable[[Mapping[str, str], str, Any], Any]

VARIABLES: dict[str, tuple[str, Parse]] = {
    "REFUNDRY_PG_SCHEMA": ("pg_schema", setting_values.text),
    "REFUNDRY_POLICY": ("policy_file", setting_values.path),
    "REFUNDRY_POLICY_VERSION": ("policy_version", setting_values.text),
    "REFUNDRY_REFUND_CANCELLED": ("refund_cancelled", setting_values.flag),
    "REFUNDRY_MAX_RETRIES": ("max_retries", WholeNumber(0, 100)),
    "REFUNDRY_MIN_BACKOFF_MS": ("min_backoff_ms", WholeNumber(1, 3_600_000)),
    "REFUNDRY_MAX_BACKOFF_MS": ("max_backoff_ms", WholeNumber(1, 3_600_000)),
    "REFUNDRY_INBOX_GRACE_MS": ("inbox_grace_ms", WholeNumber(0, 86_400_000)),
    "REFUNDRY_INBOX_GIVE_UP_MS": ("inbox_give_up_ms", WholeNumber(1, 2_592_000_000)),
    "REFUNDRY_SWEEP_INTERVAL_S": ("sweep_interval_s", WholeNumber(1, 86_400)),
    "REFUNDRY_REFUND_SLA_MS": ("refund_sla_ms", WholeNumber(1, 604_800_000)),
    "REFUNDRY_SLA_WARN_MS": ("sla_warn_ms", WholeNumber(0, 604_800_000)),
    "REFUNDRY_DEADLINES": ("deadlines_json", setting_values.deadlines),
    "REFUNDRY_POLL_INTERVAL_S": ("poll_interval_s", WholeNumber(1, 86_400)),
    "REFUNDRY_POLL_BUDGET_S": ("poll_budget_s", WholeNumber(1, 3_600)),
    "REFUNDRY_POLL_CONCURRENCY": ("poll_concurrency", WholeNumber(1, 256)),
    "REFUNDRY_STUCK_BATCH": ("stuck_batch", WholeNumber(1, 10_000)),
    "REFUNDRY_RESULT_BATCH": ("result_batch", WholeNumber(1, 1_000)),
    "REFUNDRY_STATUS_ATTEMPTS": ("status_attempts", WholeNumber(1, 100)),
    "REFUNDRY_STATUS_TIMEOUT_S": ("status_timeout_s", WholeNumber(1, 600)),
    "REFUNDRY_STATUS_MAX_WAIT_S": ("status_max_wait_s", WholeNumber(0, 3_600)),
    "STRIPE_API_KEY": ("stripe_api_key", setting_values.secret),
    "STRIPE_API_BASE": ("stripe_api_base", setting_values.api_url),
    "STRIPE_WEBHOOK_SECRET": ("stripe_webhook_secret", setting_values.secret),
    "REFUNDRY_PACKS": ("packs_json", setting_values.packs),
    "UNLANDED_PACK_ACTION": ("unlanded_action", setting_values.choice(*UNLANDED_ACTIONS)),
    "REFUNDRY_LANDING_WINDOW_S": ("landing_window_s", WholeNumber(0, 2_592_000)),
    "REFUNDRY_DUPLICATE_WINDOW_S": ("duplicate_window_s", WholeNumber(0, 2_592_000)),
    "REFUNDRY_FRAUD_ACTION": ("fraud_action", setting_values.choice(*FRAUD_ACTIONS)),
    "OPENAI_API_KEY": ("openai_api_key", setting_values.secret),
    "OPENAI_API_BASE": ("openai_api_base", setting_values.api_url),
    "REPLICATE_API_TOKEN": ("replicate_api_token", setting_values.secret),
    "REPLICATE_API_BASE": ("replicate_api_base", setting_values.api_url),
    "SUNO_API_KEY": ("suno_api_key", setting_values.secret),
    "SUNO_API_BASE": ("suno_api_base", setting_values.api_url),
    "KLING_ACCESS_KEY": ("kling_access_key", setting_values.secret),
    "KLING_SECRET_KEY": ("kling_secret_key", setting_values.secret),
    "KLING_API_BASE": ("kling_api_base", setting_values.api_url),
    "OPENAI_WEBHOOK_SECRET": ("openai_webhook_secret", setting_values.secret),
    "KLING_WEBHOOK_SECRET": ("kling_webhook_secret", setting_values.secret),
    "REPLICATE_WEBHOOK_SECRET": ("replicate_webhook_secret", setting_values.secret),
    "SUNO_WEBHOOK_SECRET": ("suno_webhook_secret", setting_values.secret),
    "FAL_JWKS_URL": ("fal_jwks_url", setting_values.fal_jwks_url),
    "FAL_WEBHOOK_USER_IDS": ("fal_webhook_user_ids", setting_values.text),
    "REFUNDRY_MAX_BODY_BYTES": ("max_body_bytes", WholeNumber(1, 67_108_864)),
    "REFUNDRY_INGRESS_DEADLINE_S": ("ingress_deadline_s", WholeNumber(1, 300)),
    "REFUNDRY_BODY_TIMEOUT_S": ("body_timeout_s", WholeNumber(1, 300)),
    "SENTRY_DSN": ("sentry_dsn", setting_values.sentry_dsn),
    "REFUNDRY_LOG_FORMAT": ("log_format", setting_values.choice("text", "json")),
    "REFUNDRY_OPS_TOKEN": ("ops_token", setting_values.ops_token),
    "REFUNDRY_API_KEYS": ("api_keys", api_keys_setting),
    "REFUNDRY_EVENTS_URL": ("events_url", setting_values.optional_url),
    "REFUNDRY_EVENTS_SECRET": ("events_secret", setting_values.secret),
    "REFUNDRY_EVENTS_TIMEOUT_S": ("events_timeout_s", WholeNumber(1, 600)),
    "REFUNDRY_EVENTS_BACKOFF_MS": ("events_backoff_ms", WholeNumber(1, 3_600_000)),
    "REFUNDRY_EVENTS_MAX_BACKOFF_MS": ("events_max_backoff_ms", WholeNumber(1, 86_400_000)),
    "REFUNDRY_EVENTS_GIVE_UP_S": ("events_give_up_s", WholeNumber(1, 2_592_000)),
    "REFUNDRY_EVENTS_CONCURRENCY": ("events_concurrency", WholeNumber(1, 256)),
    "REFUNDRY_RABBITMQ_CONSUMER_TIMEOUT_MS": (
        "rabbitmq_consumer_timeout_ms",
        WholeNumber(60_000, 604_800_000),
    ),
    "REFUNDRY_PG_POOL_SIZE": ("pg_pool_size", WholeNumber(1, 1_000)),
}
"""Environment variable → (the ``Settings`` field it sets, how it is read). ``DATABASE_URL``,
``REDIS_URL`` and ``REFUNDRY_HOME`` are read on their own (their defaults depend on each
other)."""

RELATIONS: tuple[tuple[str, str, str], ...] = (
    ("REFUNDRY_SLA_WARN_MS", "<", "REFUNDRY_REFUND_SLA_MS"),
    ("REFUNDRY_INBOX_GIVE_UP_MS", ">=", "REFUNDRY_REFUND_SLA_MS"),
)
"""``(variable, relation, variable)``: the bounds settings put on each other (the module's
relation table), checked by :meth:`Settings.from_env` once each is read."""
