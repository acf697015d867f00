"""The shapes a usable output value can have: the checks every provider shares.

A provider saying "done" proves nothing: success needs an output that a user could fetch.
These helpers judge single values, so no provider module carries its own copy:

- a *plausible URL* is an absolute ``http(s)`` URL with a host, no whitespace, and no
  placeholder as its last path segment (``…/None.mp3``, ``…/null``, ``…/undefined``), the
  shape an upstream produces when it formats a missing value into a URL;
- a *data URI* (``data:audio/wav;base64,…``) is inline output when something follows the
  comma: fal's ``sync_mode`` and Replicate's synchronous answers send outputs that way;
- *inline media* is a base64 or hex string that a provider sends in place of a file
  (MiniMax ``data.audio`` in ``hex``, ElevenLabs ``audio_base64``);
- a *link* is a plausible URL or a non-empty data URI.

Nothing here performs I/O: whether the URL still answers is the downloader's business.
:mod:`providers.outputs` combines these into the one decision of what counts as output.
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard
from urllib.parse import unquote, urlsplit

__all__ = [
    "any_true",
    "is_data_uri",
    "is_hex_audio",
    "is_inline_media",
    "is_link",
    "is_plausible_url",
    "nonempty_text",
]

_PLACEHOLDERS = frozenset({"none", "null", "nil", "undefined", "nan", "false", "[object object]"})
"""Names that a missing value turns into when an upstream formats it into a URL."""

_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_DATA_URI = re.compile(r"data:[^,\s]*,", re.IGNORECASE)


def _is_placeholder(segment: str) -> bool:
    name = unquote(segment).strip().lower()
    return name.split(".", 1)[0] in _PLACEHOLDERS


def is_plausible_url(value: object) -> bool:
    """True for an absolute http(s) URL with a host whose last segment is not a placeholder."""
    if not isinstance(value, str):
        return False
    candidate = value.strip()
    if not candidate or any(ch.isspace() for ch in candidate):
        return False
    try:
        parts = urlsplit(candidate)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced "[" in the netloc
        return False
    if parts.scheme.lower() not in ("http", "https") or not host or _is_placeholder(host):
        return False
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return not (last and _is_placeholder(last))


def is_data_uri(value: object) -> bool:
    """True for a ``data:`` URI with something after the comma (``data:,`` is empty)."""
    if not isinstance(value, str):
        return False
    head = _DATA_URI.match(value.strip())
    return head is not None and bool(value.strip()[head.end() :].strip())


def is_link(value: object) -> bool:
    """True for a plausible http(s) URL or a non-empty data URI: where an output can be had."""
    return is_plausible_url(value) or is_data_uri(value)


def nonempty_text(value: object) -> TypeGuard[str]:
    """True for a string with something other than whitespace in it."""
    return isinstance(value, str) and bool(value.strip())


def is_hex_audio(value: object) -> bool:
    """True for inline audio sent as a non-empty, even-length hex string (MiniMax ``hex``)."""
    return isinstance(value, str) and len(value) % 2 == 0 and _HEX.fullmatch(value) is not None


def is_inline_media(value: object, *, unpadded: bool = False) -> bool:
    """True for media sent inline: an even-length hex string or base64 padded to 4s; with
    ``unpadded`` (a key documented as base64 only, where a hex reading does not apply) also
    base64 without its padding (RFC 4648 §3.2), whose length is never 1 more than a multiple
    of 4.

    A placeholder such as ``"None"`` or ``"null"`` is not media, though it is valid base64.
    """
    if not isinstance(value, str):
        return False
    text = "".join(value.split())
    if not text or _is_placeholder(text) or text.lower() == "true":
        return False
    if is_hex_audio(text):
        return True
    length = len(text.rstrip("=")) if unpadded else len(text)
    fits = length % 4 != 1 if unpadded else length % 4 == 0
    return fits and _BASE64.fullmatch(text) is not None


def any_true(value: Any) -> bool:
    """True when ``value`` is ``True`` or a list holding ``True`` (safety-checker flags)."""
    if isinstance(value, list | tuple):
        return any(flag is True for flag in value)
    return value is True
