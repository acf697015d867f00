"""Webhook signature schemes, transport-agnostic: bytes and headers in, a verified JSON
object (or a refusal) out. fal's Ed25519 scheme, which needs its keys fetched, is in
``handlers/fal_signatures.py``.

- Standard Webhooks (OpenAI, Kling, Replicate): HMAC-SHA256 of
  ``{webhook-id}.{webhook-timestamp}.{body}``, verified with ``standardwebhooks``;
- Stripe: HMAC-SHA256 of ``{t}.{body}``, verified with ``stripe``
  (``providers.stripe.verify_webhook``);
- Suno-style (kie.ai): HMAC-SHA256 of ``{taskId}.{timestamp}`` only, the body unsigned,
  verified below (no library implements it).

Sources: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md,
https://docs.stripe.com/webhooks/signature, https://docs.kie.ai/common-api/webhook-verification.

Every scheme accepts a delivery signed within :data:`TOLERANCE_S` of now, before or after.
Each route's secret may be a comma-separated list (rotation: any one verifies). Refusals,
under ``RefundryError`` (no secret, signature or body ever appears in one)::

    RefundryError
    └── DeliveryRefused          nothing was recorded
        ├── RouteDisabled        the route's secret is unset: the route does not exist (404)
        ├── BodyTooLarge         over the size limit (413)
        ├── HeadersTooLarge      request line and headers over their limit (431)
        ├── BodyMalformed        not a JSON object, or lacks what the scheme signs (400)
        └── NotVerified          the signature does not prove the sender (401)
            ├── SignatureRefused     missing, forged, stale or future (``why``)
            └── SignatureUnreadable  a header the scheme cannot even parse

``SignatureUnreadable`` keeps a garbled header apart from a forgery in logs and counts: the
``standardwebhooks`` library raises ``ValueError`` / ``binascii.Error`` for it instead of
its verification error. Stripe deliveries keep ``providers.stripe``'s own errors
(``SignatureInvalid``, ``PayloadUnreadable``), which :func:`stripe_refusal` labels alike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import standardwebhooks

from ledger.errors import ConfigurationError, InvalidPayload, RefundryError
from providers import stripe as stripe_events
from providers.json_bodies import decode_json

__all__ = [
    "MIN_SECRET_BYTES",
    "TOLERANCE_S",
    "BodyMalformed",
    "BodyTooLarge",
    "DeliveryRefused",
    "HeadersTooLarge",
    "NotVerified",
    "RouteDisabled",
    "SignatureRefused",
    "SignatureUnreadable",
    "StandardWebhooks",
    "SunoSignatures",
    "check_window",
    "json_object",
    "split_secrets",
    "stripe_refusal",
    "stripe_secrets",
    "timestamp_header",
    "verify_stripe",
    "window",
]

TOLERANCE_S: Final = 300
"""How far from now a delivery's signed timestamp may lie, in seconds, either way."""

MIN_SECRET_BYTES: Final = 24
"""A Standard Webhooks signing secret holds at least this many bytes ("Random. At least 24
bytes", spec/standard-webhooks.md, "Signature scheme")."""


class DeliveryRefused(RefundryError):
    """The ingress refused a delivery; nothing was recorded."""

    permanent = True


class RouteDisabled(DeliveryRefused):
    """The route's signing secret is unset: it accepts nothing."""


class BodyTooLarge(DeliveryRefused):
    """The body is larger than the ingress accepts."""


class HeadersTooLarge(DeliveryRefused):
    """The request line and headers are larger than the ingress accepts."""


class BodyMalformed(DeliveryRefused):
    """The body is not a JSON object, or lacks the field its signature covers."""


class NotVerified(DeliveryRefused):
    """The signature does not prove that the provider sent this body just now."""


class SignatureRefused(NotVerified):
    """Missing, forged (no secret or key verifies it), stale or future-dated."""

    def __init__(self, why: str, **fields: Any) -> None:
        super().__init__(why=why, **fields)
        self.why = why


class SignatureUnreadable(NotVerified):
    """A signature header the scheme cannot parse (garbled, not forged as far as we know)."""

    why = "unreadable"


def split_secrets(raw: str) -> tuple[str, ...]:
    """``"a, b,,c"`` → ``("a", "b", "c")``: each route's secret list (rotation)."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def window(timestamp: int, *, now: float | None = None) -> str | None:
    """``"stale"`` or ``"future"`` when ``timestamp`` (epoch s) is more than
    :data:`TOLERANCE_S` from now, else ``None``."""
    current = time.time() if now is None else now
    if timestamp < current - TOLERANCE_S:
        return "stale"
    if timestamp > current + TOLERANCE_S:
        return "future"
    return None


def json_object(body: bytes | str) -> dict[str, Any]:
    """The body as a JSON object, read by the one JSON decoder of every door
    (``providers.json_bodies.decode_json``); ``BodyMalformed`` for anything else (not UTF-8
    or not JSON, ``NaN`` or ``Infinity``, a lone surrogate, a number of more than 100 digits,
    nesting past its depth, an array or scalar)."""
    try:
        value = decode_json(body, field="body")
    except InvalidPayload:
        raise BodyMalformed("the body is not strict JSON") from None
    if not isinstance(value, dict):
        raise BodyMalformed("the body is not a JSON object", type=type(value).__name__)
    return value


def timestamp_header(raw: str | None) -> int:
    """A header's epoch seconds; ``SignatureUnreadable`` unless it is a plain integer."""
    if raw is None or not raw.strip().isdigit() or len(raw.strip()) > 12:
        raise SignatureUnreadable("the timestamp header is not epoch seconds")
    return int(raw.strip())


def check_window(timestamp: int) -> None:
    late = window(timestamp)
    if late is not None:
        raise SignatureRefused(late, timestamp=timestamp, tolerance_s=TOLERANCE_S)


# --------------------------------------------------------------------------- Standard Webhooks


class StandardWebhooks:
    """One route's Standard Webhooks secrets (``whsec_<base64>``), verified with the
    ``standardwebhooks`` library (which also enforces the five-minute window both ways).

    The signature is checked before the body is read: a body no secret verifies is
    ``forged`` whatever it holds. Every entry of the space-separated ``webhook-signature``
    list is tried until one matches (the spec: "try to verify each signature until one
    matches"); entries the scheme cannot parse are skipped, and only a list of nothing
    else is ``unreadable``.
    """

    def __init__(self, secrets: Sequence[str], *, variable: str) -> None:
        if not secrets:
            raise ConfigurationError("no signing secret", variable=variable)
        self._keys = tuple(_secret_key(secret, variable) for secret in secrets)
        self._hooks = tuple(standardwebhooks.Webhook(key) for key in self._keys)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
        """``(webhook-id, the JSON object)`` of a genuine delivery. ``headers`` have lower-case
        names. Raises ``SignatureRefused``, ``SignatureUnreadable`` or (verified, but not a
        JSON object) ``BodyMalformed``."""
        webhook_id = headers.get("webhook-id", "")
        signature = headers.get("webhook-signature", "")
        stamp = headers.get("webhook-timestamp", "")
        if not (webhook_id and signature and stamp):
            raise SignatureRefused("missing")
        check_window(timestamp_header(stamp))
        listed = [entry for entry in signature.split(" ") if _readable_entry(entry)]
        if not listed:
            raise SignatureUnreadable("no entry of the webhook-signature header is readable")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            if self._signed_bytes(webhook_id, stamp, body, listed):
                raise BodyMalformed("the body is not UTF-8") from None
            raise SignatureRefused("forged") from None
        wanted = {
            "webhook-id": webhook_id,
            "webhook-timestamp": stamp,
            "webhook-signature": " ".join(listed),
        }
        for hook in self._hooks:
            try:
                hook.verify(text, wanted, json_parse=False)
            except standardwebhooks.webhooks.WebhookVerificationError:
                continue  # perhaps the other secret of a rotation
            except (ValueError, binascii.Error):  # the library's parse errors: not a forgery
                raise SignatureUnreadable("the webhook-signature header is garbled") from None
            return webhook_id, json_object(text)
        raise SignatureRefused("forged")

    def _signed_bytes(self, webhook_id: str, stamp: str, body: bytes, listed: list[str]) -> bool:
        """Whether a body that is not UTF-8 carries a genuine signature. Hand-written: the
        library verifies text only, while the spec signs the body's bytes; the same
        HMAC-SHA256 of ``{id}.{timestamp}.{body}`` under the decoded secret."""
        signed = f"{webhook_id}.{stamp}.".encode() + body
        given = [base64.b64decode(entry.split(",")[1]) for entry in listed if entry[:3] == "v1,"]
        for key in self._keys:
            expected = hmac.new(key, signed, hashlib.sha256).digest()
            if any(hmac.compare_digest(expected, each) for each in given):
                return True
        return False


def _secret_key(secret: str, variable: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret (the prefix and the padding optional, as the
    library reads them): strict base64 of at least :data:`MIN_SECRET_BYTES`, else
    ``ConfigurationError`` naming ``variable``, never the secret. The library itself decodes
    leniently (skipping characters that are not base64) and accepts any length, so a
    mistyped secret would start and then refuse every genuine delivery as forged."""
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (ValueError, binascii.Error):
        raise ConfigurationError(
            "not a Standard Webhooks secret (whsec_ + base64)", variable=variable
        ) from None
    if len(key) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            "a Standard Webhooks secret is too short",
            variable=variable,
            minimum_bytes=MIN_SECRET_BYTES,
        )
    return key


def _readable_entry(entry: str) -> bool:
    """A ``webhook-signature`` list entry the library can parse: ``<version>,<signature>``,
    base64 for ``v1`` (decoded as leniently as the library decodes it)."""
    parts = entry.split(",")
    if len(parts) != 2:
        return False
    if parts[0] != "v1":
        return True  # another scheme's entry: the library skips it
    try:
        base64.b64decode(parts[1])
    except (ValueError, binascii.Error):
        return False
    return True


# --------------------------------------------------------------------------- Stripe


def stripe_secrets(secrets: Sequence[str], *, variable: str) -> tuple[str, ...]:
    """``secrets`` when each is a Stripe endpoint signing secret (``whsec_…``, as the
    Dashboard and ``stripe listen`` show it: https://docs.stripe.com/webhooks/signature);
    else ``ConfigurationError`` naming ``variable``, never the secret (an API key pasted in
    its place would refuse every genuine event as forged)."""
    if not secrets:
        raise ConfigurationError("no signing secret", variable=variable)
    if not all(secret.startswith("whsec_") and len(secret) > 6 for secret in secrets):
        raise ConfigurationError("not a Stripe webhook signing secret (whsec_…)", variable=variable)
    return tuple(secrets)


def verify_stripe(body: bytes, header: str | None, secrets: Sequence[str]) -> dict[str, Any]:
    """The Stripe event in ``body`` once one of ``secrets`` verifies its ``Stripe-Signature``
    (``providers.stripe.verify_webhook``: the official library's HMAC check plus our refusal
    of timestamps more than five minutes away either way). Raises ``SignatureInvalid`` or
    ``PayloadUnreadable`` (``providers.stripe``), ``ConfigurationError`` without a secret."""
    if not secrets:
        raise ConfigurationError("no Stripe webhook signing secret")
    refused: stripe_events.SignatureInvalid | None = None
    for secret in secrets:
        try:
            return stripe_events.verify_webhook(body, header, secret, tolerance_s=TOLERANCE_S)
        except stripe_events.SignatureInvalid as exc:
            refused = refused or exc
    assert refused is not None
    raise refused


def stripe_refusal(header: str | None) -> str:
    """Why a refused ``Stripe-Signature`` was refused, for logs and counts only (the decision
    is ``verify_stripe``'s): missing, unreadable, stale, future or forged."""
    if not header:
        return "missing"
    fields = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    stamp = fields.get("t", "")
    if not stamp.isdigit() or "v1" not in fields:
        return "unreadable"
    return window(int(stamp)) or "forged"


# --------------------------------------------------------------------------- Suno-style (kie.ai)

SUNO_TASK_FIELDS: Final = (("data", "task_id"), ("data", "taskId"), ("task_id",), ("taskId",))
"""Where a Suno-style callback names its task (kie.ai signs ``data.task_id``; MIDI callbacks
keep it at the top level)."""


def _task_id(payload: Mapping[str, Any]) -> str | None:
    for path in SUNO_TASK_FIELDS:
        node: Any = payload
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(node, str) and node:
            return node
    return None


class SunoSignatures:
    """kie.ai's callback HMAC: ``base64(HMAC-SHA256(key, f"{taskId}.{timestamp}"))`` in
    ``X-Webhook-Signature``, the time in ``X-Webhook-Timestamp``. Hand-written: the scheme
    is this one provider's and no library implements it. It does not cover the body, so a
    verified callback only proves that the provider named this task just now."""

    def __init__(self, secrets: Sequence[str], *, variable: str) -> None:
        if not secrets:
            raise ConfigurationError("no signing secret", variable=variable)
        self._keys = tuple(secret.encode("utf-8") for secret in secrets)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """The task id a genuine callback names. Raises ``SignatureRefused`` (missing, stale,
        future, or forged: no key signs the task id read from the body, or the body names
        none that could be checked) or ``SignatureUnreadable``. The headers are checked
        before the body is read; the body is read only for the task id its signature covers."""
        signature = headers.get("x-webhook-signature", "")
        if not signature or not headers.get("x-webhook-timestamp"):
            raise SignatureRefused("missing")
        timestamp = timestamp_header(headers.get("x-webhook-timestamp"))
        check_window(timestamp)
        try:
            given = base64.b64decode(signature, validate=True)
        except (ValueError, binascii.Error):
            raise SignatureUnreadable("the signature is not base64") from None
        try:
            task_id = _task_id(json_object(body))
        except BodyMalformed:
            task_id = None
        if task_id is None:  # nothing the signature could be checked against
            raise SignatureRefused("forged")
        signed = f"{task_id}.{timestamp}".encode()
        if not any(_matches(key, signed, given) for key in self._keys):
            raise SignatureRefused("forged")
        return task_id


def _matches(key: bytes, signed: bytes, given: bytes) -> bool:
    return hmac.compare_digest(hmac.new(key, signed, hashlib.sha256).digest(), given)
