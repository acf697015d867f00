"""The HTTP API's keys (``REFUNDRY_API_KEYS``): how they are read, and how a request's
``Authorization: Bearer <key>`` is checked against them.

Several keys may be valid at once (comma-separated) so that a platform rotates without
downtime: add the new key, move its pipelines over, remove the old one. Each key is at
least :data:`API_KEY_MIN_CHARS` printable ASCII characters without spaces or commas
(``openssl rand -hex 32``). Only SHA-256 digests of the keys are held after start; a
presented key is hashed and compared with every digest in constant time
(``hmac.compare_digest``, no early exit), so neither its content nor which key matched
shows in the time taken. The key itself is never logged, stored or repeated in an error;
the ledger stores only its digest (the scope of its idempotency keys).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Final

from ledger.errors import ConfigurationError

__all__ = ["API_KEY_MIN_CHARS", "ApiKeys", "api_keys_setting"]

API_KEY_MIN_CHARS: Final[int] = 24
"""A shorter key could be guessed; ``openssl rand -hex 32`` gives 64 characters."""

_KEY: Final = re.compile(r"[!-+\--~]+")
"""Printable ASCII without space or comma (the list's separator)."""

_BEARER: Final = re.compile(r"Bearer +([!-~]+)", re.IGNORECASE)
"""RFC 9110 §11.4 (``auth-scheme [ 1*SP token68 ]``) and RFC 6750 §2.1: one or more spaces
after the scheme, whose name is case-insensitive."""


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def api_keys_setting(env: Mapping[str, str], name: str, default: Any) -> str:
    """``REFUNDRY_API_KEYS`` as set: empty (the API off), or comma-separated keys, each at
    least :data:`API_KEY_MIN_CHARS` printable ASCII characters without spaces. Raises
    ``ConfigurationError`` naming the variable (and which key of the list), never a key."""
    raw = env.get(name, "") or str(default)
    if raw and not raw.strip():
        raise ConfigurationError("is set but blank", variable=name)
    for position, key in enumerate(raw.split(","), start=1):
        key = key.strip()
        if not key and raw.strip():
            raise ConfigurationError("holds an empty key between commas", variable=name)
        if key and (len(key) < API_KEY_MIN_CHARS or not _KEY.fullmatch(key)):
            raise ConfigurationError(
                f"each key is at least {API_KEY_MIN_CHARS} printable ASCII characters "
                "without spaces (openssl rand -hex 32)",
                variable=name,
                key_number=position,
            )
    return ",".join(_split(raw))


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("ascii")).digest()


class ApiKeys:
    """The keys of ``REFUNDRY_API_KEYS`` (as :func:`api_keys_setting` returns them), held
    as SHA-256 digests."""

    def __init__(self, raw: str) -> None:
        self._digests: tuple[bytes, ...] = tuple(_digest(key) for key in _split(raw))

    def __bool__(self) -> bool:
        return bool(self._digests)

    def scope(self, authorization: str | None) -> str | None:
        """The scope of the request's key (its SHA-256, hex) when ``authorization`` is
        ``Bearer <one of the keys>``; None otherwise (missing, another scheme, a wrong key)."""
        match = _BEARER.fullmatch((authorization or "").strip())
        if match is None:
            return None
        presented = _digest(match.group(1))
        found: bytes | None = None
        for digest in self._digests:  # every digest, whatever matched: constant time
            if hmac.compare_digest(presented, digest):
                found = digest
        return None if found is None else found.hex()
