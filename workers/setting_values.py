"""How each setting is read from the environment (``workers.settings`` names the variables
and their defaults): every reader takes ``(env, name, default)`` and returns the value, or
raises ``ConfigurationError`` naming the variable, never repeating a secret."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sentry_sdk.utils import BadDsn, Dsn

from handlers.deadlines import DeadlinePolicy
from handlers.events_out import EventsOutConfig
from handlers.packs import PackCatalog
from ledger.errors import ConfigurationError
from ledger.server_urls import ServerURL, parse_server_url

__all__ = [
    "OPS_TOKEN_MIN_CHARS",
    "REDIS_SCHEMES",
    "WholeNumber",
    "api_url",
    "choice",
    "deadlines",
    "events_out_config",
    "events_out_of",
    "fal_jwks_url",
    "flag",
    "ops_token",
    "optional_url",
    "packs",
    "parse_redis_url",
    "path",
    "secret",
    "sentry_dsn",
    "text",
]

REDIS_SCHEMES = ("redis", "rediss", "unix")
_REDIS_DB = re.compile(r"(?:/[0-9]{0,5})?")


def parse_redis_url(url: str, variable: str = "REDIS_URL") -> ServerURL:
    """``REDIS_URL`` (or ``variable``) parsed (``ledger.server_urls``): ``redis://``,
    ``rediss://`` or ``unix://``, one host, a database number as the path.
    ``ConfigurationError`` naming the variable for anything else, never repeating the URL."""
    parsed = parse_server_url(url, variable=variable, schemes=REDIS_SCHEMES)
    if parsed.scheme != "unix" and (len(parsed.hosts) != 1 or not _REDIS_DB.fullmatch(parsed.path)):
        raise ConfigurationError("one host, then a database number (/0)", variable=variable)
    return parsed


def text(env: Mapping[str, str], name: str, default: Any) -> str:
    value = (env.get(name) or "").strip() or str(default)
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ConfigurationError("holds a control character", variable=name)
    return value


def path(env: Mapping[str, str], name: str, default: Any) -> str:
    """A file path: unset or empty is ``default``; set to blanks only is refused (a
    mistake that would silently use the default instead of the file meant)."""
    raw = env.get(name, "")
    if raw and not raw.strip():
        raise ConfigurationError("is set but blank", variable=name)
    return text(env, name, default)


def secret(env: Mapping[str, str], name: str, default: Any) -> str:
    """A secret: unset or empty is off; set, it holds no control character and is not only
    blanks (either is a mistake that would start a route refusing every delivery, or turn
    it off unseen). The error names the variable, never the value."""
    raw = env.get(name, "")
    if any(unicodedata.category(ch) == "Cc" for ch in raw.strip()):
        raise ConfigurationError("holds a control character", variable=name)
    if raw and not raw.strip():
        raise ConfigurationError("is set but blank", variable=name)
    return raw.strip()


OPS_TOKEN_MIN_CHARS = 24
"""A shorter ops token could be guessed; ``openssl rand -hex 32`` gives 64 characters."""


def ops_token(env: Mapping[str, str], name: str, default: Any) -> str:
    """The ops page's token: empty (the page off), or at least :data:`OPS_TOKEN_MIN_CHARS`
    printable ASCII characters without spaces (it is typed, and sent in a header)."""
    value = secret(env, name, default)
    if value and (len(value) < OPS_TOKEN_MIN_CHARS or not re.fullmatch(r"[!-~]+", value)):
        raise ConfigurationError(
            f"must be at least {OPS_TOKEN_MIN_CHARS} printable ASCII characters, no spaces",
            variable=name,
        )
    return value


@dataclass(frozen=True, slots=True)
class WholeNumber:
    """A whole-number setting in ASCII digits from ``low`` to ``high`` (the module's range
    table); ``ConfigurationError`` naming the variable for anything else."""

    low: int
    high: int

    def __call__(self, env: Mapping[str, str], name: str, default: Any) -> int:
        raw = (env.get(name) or "").strip()
        if not raw:
            return int(default)
        if not re.fullmatch(r"-?[0-9]++", raw):
            raise ConfigurationError("not a whole number in ASCII digits", variable=name)
        value = int(raw) if len(raw) <= 20 else None  # longer: out of range, whatever it is
        if value is None or not self.low <= value <= self.high:
            raise ConfigurationError(f"must be from {self.low} to {self.high}", variable=name)
        return value


def choice(*allowed: str) -> Callable[[Mapping[str, str], str, Any], str]:
    def parse(env: Mapping[str, str], name: str, default: Any) -> str:
        value = text(env, name, default)
        if value not in allowed:
            raise ConfigurationError(f"must be one of: {', '.join(allowed)}", variable=name)
        return value

    return parse


def packs(env: Mapping[str, str], name: str, default: Any) -> str:
    value = text(env, name, default)
    PackCatalog.from_json(value)  # refuses what the catalog cannot use, naming the variable
    return value


def deadlines(env: Mapping[str, str], name: str, default: Any) -> str:
    value = text(env, name, default)
    DeadlinePolicy.from_json(value)
    return value


def fal_jwks_url(env: Mapping[str, str], name: str, default: Any) -> str:
    """fal's key set URL; ``off`` (or ``none``) turns the fal route off (returns "")."""
    if (env.get(name) or "").strip().lower() in ("off", "none"):
        return ""
    return api_url(env, name, default)


def api_url(env: Mapping[str, str], name: str, default: Any) -> str:
    """An API base: ``http(s)://host[:port][/path]``; credentials go in their own variables
    (a password here would be sent and printed), and a query or fragment has no place."""
    raw = text(env, name, default)
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigurationError("not a usable http(s) URL", variable=name) from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError("not an http(s) URL", variable=name)
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise ConfigurationError(
            "an API base URL takes no credentials, query or fragment", variable=name
        )
    return raw


def sentry_dsn(env: Mapping[str, str], name: str, default: Any) -> str:
    """A Sentry DSN (``https://<public key>@<host>/<project id>``), or empty: Sentry off.
    An unusable one is refused without repeating it (it names the project's key)."""
    value = secret(env, name, default)
    if not value:
        return ""
    try:
        Dsn(value)
    except BadDsn:
        raise ConfigurationError("not a Sentry DSN", variable=name) from None
    return value


def flag(env: Mapping[str, str], name: str, default: Any) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return bool(default)
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError("not a boolean", variable=name)


def optional_url(env: Mapping[str, str], name: str, default: Any) -> str:
    """An endpoint URL as :func:`api_url` reads it, or empty (unset: off)."""
    return api_url(env, name, default) if (env.get(name) or "").strip() else ""


def events_out_config(values: Mapping[str, Any]) -> EventsOutConfig | None:
    """Events out as the settings ``values`` (field → value) configure them: None when
    ``REFUNDRY_EVENTS_URL`` is unset. ``ConfigurationError`` naming the variable when only
    one of the URL and the secret is set, or the secret is not ``whsec_`` + base64 of at
    least 24 bytes (never repeating it)."""
    url, secret_value = values["events_url"], values["events_secret"]
    if not url and not secret_value:
        return None
    if not url:
        raise ConfigurationError("set with REFUNDRY_EVENTS_URL", variable="REFUNDRY_EVENTS_SECRET")
    if not secret_value:
        raise ConfigurationError("events out need their secret", variable="REFUNDRY_EVENTS_SECRET")
    return EventsOutConfig(
        url=url,
        secret=secret_value,
        timeout_s=float(values["events_timeout_s"]),
        backoff_base_ms=int(values["events_backoff_ms"]),
        max_backoff_ms=int(values["events_max_backoff_ms"]),
        give_up_ms=int(values["events_give_up_s"]) * 1000,
        concurrency=int(values["events_concurrency"]),
    )


_EVENTS_FIELDS: tuple[str, ...] = ("events_url", "events_secret", "events_timeout_s")
_EVENTS_FIELDS += ("events_backoff_ms", "events_max_backoff_ms", "events_give_up_s")
_EVENTS_FIELDS += ("events_concurrency",)


def events_out_of(settings: Any) -> EventsOutConfig | None:
    """:func:`events_out_config` of a ``workers.settings.Settings``."""
    return events_out_config({name: getattr(settings, name) for name in _EVENTS_FIELDS})
