"""fal.ai webhook signatures: Ed25519 with public keys from fal's JWKS.

Scheme (https://docs.fal.ai/model-endpoints/webhooks, "Verifying Your Webhook"):

- headers ``X-Fal-Webhook-Request-Id``, ``X-Fal-Webhook-User-Id``,
  ``X-Fal-Webhook-Timestamp`` (epoch s) and ``X-Fal-Webhook-Signature`` (hex);
- signed message: ``"{request_id}\\n{user_id}\\n{timestamp}\\n{sha256_hex(body)}"`` (UTF-8);
- keys: the JWKS at ``FAL_JWKS_URL`` (default :data:`FAL_JWKS_URL`), each an ``OKP`` /
  ``Ed25519`` key whose ``x`` is the base64url raw public key; any key may have signed;
- a timestamp more than five minutes from now, either way, is refused.

The key set is fetched with httpx and kept for a day. When no kept key verifies a delivery
it is fetched again at once, then not again for :attr:`FalKeys.refresh_interval_s`: fal
names no key id in its headers, so "a key we do not know" shows only as a signature no kept
key accepts, and that bound keeps a stream of forgeries from becoming a stream of JWKS
requests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from handlers.webhook_verification import (
    SignatureRefused,
    SignatureUnreadable,
    check_window,
    timestamp_header,
)
from ledger.errors import RefundryError

__all__ = ["FAL_JWKS_URL", "FalKeys", "FalSignatures", "KeysUnavailable"]

log = logging.getLogger(__name__)

FAL_JWKS_URL: Final = "https://rest.alpha.fal.ai/.well-known/jwks.json"
"""The key set fal's webhook documentation names."""

HEADERS: Final = (
    "x-fal-webhook-request-id",
    "x-fal-webhook-user-id",
    "x-fal-webhook-timestamp",
    "x-fal-webhook-signature",
)


class KeysUnavailable(RefundryError):
    """fal's key set could not be fetched and none is kept: the delivery cannot be checked
    now (transient: the provider retries)."""


def _public_keys(document: Any) -> list[Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS document; other key types are skipped."""
    keys = document.get("keys") if isinstance(document, Mapping) else None
    found = []
    for jwk in keys if isinstance(keys, list) else []:
        if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        x = jwk.get("x")
        try:
            raw = base64.urlsafe_b64decode(str(x) + "=" * (-len(str(x)) % 4))
            found.append(Ed25519PublicKey.from_public_bytes(raw))
        except (ValueError, binascii.Error):
            log.warning("fal JWKS: skipped a key that is not a 32-byte Ed25519 key")
    return found


class FalKeys:
    """fal's public keys, fetched on first use and kept (thread-safe).

    While no key is kept (fal's endpoint unreachable), a fetch is tried at most once per
    :attr:`retry_s`; each delivery meanwhile raises ``KeysUnavailable``.
    """

    def __init__(
        self,
        url: str = FAL_JWKS_URL,
        *,
        client: httpx.Client | None = None,
        max_age_s: float = 86_400.0,
        refresh_interval_s: float = 60.0,
        retry_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.max_age_s = max_age_s
        self.refresh_interval_s = refresh_interval_s
        self.retry_s = retry_s
        self._client = client or httpx.Client(timeout=httpx.Timeout(5.0))
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: list[Ed25519PublicKey] = []
        self._fetched_at = 0.0
        self._tried_at: float | None = None
        self._refreshed_at: float | None = None

    def close(self) -> None:
        self._client.close()

    def current(self) -> list[Ed25519PublicKey]:
        """The kept keys, fetched first when none are kept or they are a day old."""
        with self._lock:
            if not self._keys or self._clock() - self._fetched_at > self.max_age_s:
                if self._may_try(self.retry_s):
                    self._fetch()
                if not self._keys:
                    raise KeysUnavailable(url=self.url)
            return list(self._keys)

    def refreshed(self) -> list[Ed25519PublicKey] | None:
        """The key set fetched again, or ``None`` when an unknown key already made us fetch
        it within :attr:`refresh_interval_s`."""
        with self._lock:
            now = self._clock()
            if (
                self._refreshed_at is not None
                and now - self._refreshed_at < self.refresh_interval_s
            ):
                return None
            self._refreshed_at = now
            self._fetch()
            return list(self._keys)

    def _may_try(self, interval_s: float) -> bool:
        return self._tried_at is None or self._clock() - self._tried_at >= interval_s

    def _fetch(self) -> None:
        """Fetch the key set; on failure keep the keys we have (logged, not raised)."""
        self._tried_at = self._clock()
        try:
            response = self._client.get(self.url)
            response.raise_for_status()
            keys = _public_keys(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("fal JWKS fetch failed (%s)", type(exc).__name__)
            return
        if not keys:
            log.warning("fal JWKS holds no Ed25519 key; keeping the keys we have")
            return
        self._keys, self._fetched_at = keys, self._tried_at


def _verifies(keys: Sequence[Ed25519PublicKey], message: bytes, signature: bytes) -> bool:
    for key in keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False


class FalSignatures:
    """Verifies fal deliveries; ``user_ids`` (when given) are the fal accounts accepted."""

    def __init__(self, keys: FalKeys, *, user_ids: Sequence[str] = ()) -> None:
        self.keys = keys
        self.user_ids = frozenset(user_ids)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """The request id of a genuine delivery. Raises ``SignatureRefused`` (missing, stale,
        future, forged, or ``foreign_account``), ``SignatureUnreadable``, ``KeysUnavailable``."""
        request_id, user_id, stamp, signature = (headers.get(name, "") for name in HEADERS)
        if not (request_id and user_id and stamp and signature):
            raise SignatureRefused("missing")
        timestamp = timestamp_header(stamp)
        check_window(timestamp)
        try:
            raw = bytes.fromhex(signature)
        except ValueError:
            raise SignatureUnreadable("the signature is not hex") from None
        if len(raw) != 64:
            raise SignatureUnreadable("an Ed25519 signature is 64 bytes", length=len(raw))
        digest = hashlib.sha256(body).hexdigest()
        message = f"{request_id}\n{user_id}\n{timestamp}\n{digest}".encode()
        if not _verifies(self.keys.current(), message, raw):
            fresh = self.keys.refreshed()  # perhaps fal rotated its key
            if fresh is None or not _verifies(fresh, message, raw):
                raise SignatureRefused("forged")
        if self.user_ids and user_id not in self.user_ids:
            raise SignatureRefused("foreign_account")
        return request_id
