"""Refundry's settings: built once from the environment, each with an embedded default.

| variable | default | meaning |
| --- | --- | --- |
| ``DATABASE_URL`` | SQLite file ``ledger.sqlite3`` in the home | ``postgresql://…`` in production |
| ``REFUNDRY_PG_SCHEMA`` | ``refundry`` | PostgreSQL schema that holds the ledger's tables |
| ``REDIS_URL`` | unset: embedded ``redis-server`` | dramatiq's broker |
| ``REFUNDRY_HOME`` | ``.refundry`` | local state: SQLite file, embedded Redis data |
| ``REFUNDRY_POLICY_VERSION`` | ``2026-11-23`` | written on every ledger entry |
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
| ``STRIPE_API_KEY`` | empty: no reconciliation, no refunds | secret |
| ``STRIPE_API_BASE`` | ``https://api.stripe.com`` | a Stripe-compatible endpoint |
| ``STRIPE_WEBHOOK_SECRET`` | empty: ``/webhooks/stripe`` off | secret(s) (*): Stripe webhooks |
| ``REFUNDRY_PACKS`` | ``{}`` | JSON: price id → credits |
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

(*) Webhook secrets may be comma-separated: during a rotation any one of them verifies.

The default retry budget (8 retries from 1 s doubling, each at most 5 min) dead-letters a
message that keeps failing after at most about 9 minutes of backoff: well inside the
one-hour SLA. Its inbox row stays pending and the sweep delivers it again, so an event that
becomes applicable later (its charge recorded late) is still applied without a human.
A worker killed mid-message is covered the same way: its event is re-sent by the sweep
within grace + interval (40 s by default), not after dramatiq's 60 s heartbeat lottery.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from handlers.fal_signatures import FAL_JWKS_URL
from ledger.errors import ConfigurationError

__all__ = ["Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = field(repr=False)  # may carry a password
    redis_url: str | None = field(repr=False)
    home: Path
    pg_schema: str = "refundry"
    policy_version: str = "2026-11-23"
    refund_cancelled: bool = True
    max_retries: int = 8
    min_backoff_ms: int = 1_000
    max_backoff_ms: int = 300_000
    inbox_grace_ms: int = 30_000
    inbox_give_up_ms: int = 6 * 3_600_000
    sweep_interval_s: int = 10
    refund_sla_ms: int = 3_600_000
    sla_warn_ms: int = 45 * 60_000
    deadlines_json: str = ""
    poll_interval_s: int = 60
    stripe_api_key: str = field(default="", repr=False)
    stripe_api_base: str = "https://api.stripe.com"
    stripe_webhook_secret: str = field(default="", repr=False)
    packs_json: str = ""
    unlanded_action: str = "complete"
    landing_window_s: int = 3600
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        kling_access_key = env.get("KLING_ACCESS_KEY", "").strip()
        kling_secret_key = env.get("KLING_SECRET_KEY", "").strip()
        if bool(kling_access_key) != bool(kling_secret_key):
            missing = "KLING_SECRET_KEY" if kling_access_key else "KLING_ACCESS_KEY"
            raise ConfigurationError("Kling needs both its access and secret key", variable=missing)
        home = Path(env.get("REFUNDRY_HOME", ".refundry")).absolute()
        return cls(
            database_url=env.get("DATABASE_URL") or f"sqlite:///{home / 'ledger.sqlite3'}",
            redis_url=env.get("REDIS_URL") or None,
            home=home,
            pg_schema=env.get("REFUNDRY_PG_SCHEMA", "refundry"),
            policy_version=env.get("REFUNDRY_POLICY_VERSION", "2026-11-23"),
            refund_cancelled=_flag(env, "REFUNDRY_REFUND_CANCELLED", True),
            max_retries=_int(env, "REFUNDRY_MAX_RETRIES", 8),
            min_backoff_ms=_int(env, "REFUNDRY_MIN_BACKOFF_MS", 1_000),
            max_backoff_ms=_int(env, "REFUNDRY_MAX_BACKOFF_MS", 300_000),
            inbox_grace_ms=_int(env, "REFUNDRY_INBOX_GRACE_MS", 30_000),
            inbox_give_up_ms=_int(env, "REFUNDRY_INBOX_GIVE_UP_MS", 6 * 3_600_000),
            sweep_interval_s=max(1, _int(env, "REFUNDRY_SWEEP_INTERVAL_S", 10)),
            refund_sla_ms=_int(env, "REFUNDRY_REFUND_SLA_MS", 3_600_000),
            sla_warn_ms=_int(env, "REFUNDRY_SLA_WARN_MS", 45 * 60_000),
            deadlines_json=env.get("REFUNDRY_DEADLINES", ""),
            poll_interval_s=max(1, _int(env, "REFUNDRY_POLL_INTERVAL_S", 60)),
            stripe_api_key=env.get("STRIPE_API_KEY", "").strip(),
            stripe_api_base=_url(env, "STRIPE_API_BASE", "https://api.stripe.com"),
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET", "").strip(),
            packs_json=env.get("REFUNDRY_PACKS", ""),
            unlanded_action=env.get("UNLANDED_PACK_ACTION", "complete").strip(),
            landing_window_s=_int(env, "REFUNDRY_LANDING_WINDOW_S", 3600),
            duplicate_window_s=_int(env, "REFUNDRY_DUPLICATE_WINDOW_S", 600),
            fraud_action=env.get("REFUNDRY_FRAUD_ACTION", "refund_and_revoke").strip(),
            openai_api_key=env.get("OPENAI_API_KEY", "").strip(),
            openai_api_base=_url(env, "OPENAI_API_BASE", "https://api.openai.com/v1"),
            replicate_api_token=env.get("REPLICATE_API_TOKEN", "").strip(),
            replicate_api_base=_url(env, "REPLICATE_API_BASE", "https://api.replicate.com"),
            suno_api_key=env.get("SUNO_API_KEY", "").strip(),
            suno_api_base=_url(env, "SUNO_API_BASE", "https://api.sunoapi.org"),
            kling_access_key=kling_access_key,
            kling_secret_key=kling_secret_key,
            kling_api_base=_url(env, "KLING_API_BASE", "https://api-singapore.klingai.com"),
            openai_webhook_secret=env.get("OPENAI_WEBHOOK_SECRET", "").strip(),
            kling_webhook_secret=env.get("KLING_WEBHOOK_SECRET", "").strip(),
            replicate_webhook_secret=env.get("REPLICATE_WEBHOOK_SECRET", "").strip(),
            suno_webhook_secret=env.get("SUNO_WEBHOOK_SECRET", "").strip(),
            fal_jwks_url=_fal_jwks_url(env),
            fal_webhook_user_ids=env.get("FAL_WEBHOOK_USER_IDS", "").strip(),
            max_body_bytes=_positive(env, "REFUNDRY_MAX_BODY_BYTES", 1_048_576),
            ingress_deadline_s=_positive(env, "REFUNDRY_INGRESS_DEADLINE_S", 8),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError("not an integer", variable=name) from None
    if value < 0:
        raise ConfigurationError("must not be negative", variable=name)
    return value


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value == 0:
        raise ConfigurationError("must be positive", variable=name)
    return value


def _fal_jwks_url(env: Mapping[str, str]) -> str:
    """fal's key set URL; ``off`` (or ``none``) turns the fal route off (returns "")."""
    if (env.get("FAL_JWKS_URL") or "").strip().lower() in ("off", "none"):
        return ""
    return _url(env, "FAL_JWKS_URL", FAL_JWKS_URL)


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = (env.get(name) or "").strip() or default
    if not raw.startswith(("https://", "http://")):
        raise ConfigurationError("not an http(s) URL", variable=name)
    return raw


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError("not a boolean", variable=name)
