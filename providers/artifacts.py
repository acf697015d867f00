"""Is there a usable output in a payload? The checks every provider shares.

A provider saying "done" proves nothing: success needs an artifact that a user could fetch.
These helpers decide what counts as one, so no provider module carries its own copy:

- a *plausible URL* is an absolute ``http(s)`` URL with a host, no whitespace, and no
  placeholder as its last path segment (``…/None.mp3``, ``…/null``, ``…/undefined``), the
  shape an upstream produces when it formats a missing value into a URL;
- a *file object* is a mapping whose ``url`` (or another named key) is a plausible URL;
- an *artifact* is a plausible URL given directly, as a file object, or as a list of either.

Nothing here performs I/O: whether the URL still answers is the downloader's business.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard
from urllib.parse import unquote, urlsplit

__all__ = [
    "any_true",
    "artifact_under",
    "first_artifact",
    "first_url",
    "is_hex_audio",
    "is_plausible_url",
    "nonempty_text",
    "url_of",
]

_PLACEHOLDERS = frozenset({"none", "null", "nil", "undefined", "nan", "false", "[object object]"})
"""Names that a missing value turns into when an upstream formats it into a URL."""

_HEX = re.compile(r"[0-9a-fA-F]+")


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


def url_of(value: object, keys: Sequence[str] = ("url",)) -> str | None:
    """The plausible URL that ``value`` is, or that a file object carries under one of ``keys``."""
    if isinstance(value, str):
        return value.strip() if is_plausible_url(value) else None
    if isinstance(value, Mapping):
        for key in keys:
            found = value.get(key)
            if isinstance(found, str) and is_plausible_url(found):
                return found.strip()
    return None


def first_url(values: Iterable[object], keys: Sequence[str] = ("url",)) -> str | None:
    """The first plausible URL among URLs and file objects, skipping empty and broken ones."""
    for value in values:
        found = url_of(value, keys)
        if found is not None:
            return found
    return None


def first_artifact(value: object, keys: Sequence[str] = ("url",)) -> str | None:
    """The first plausible URL in a URL, a file object, or a list of URLs and file objects."""
    if isinstance(value, list | tuple):
        return first_url(value, keys)
    return url_of(value, keys)


def artifact_under(
    container: object, keys: Sequence[str], url_keys: Sequence[str] = ("url",)
) -> str | None:
    """The first artifact stored under one of ``keys`` of a JSON object, tried in order."""
    if not isinstance(container, Mapping):
        return None
    for key in keys:
        found = first_artifact(container.get(key), url_keys)
        if found is not None:
            return found
    return None


def nonempty_text(value: object) -> TypeGuard[str]:
    """True for a string with something other than whitespace in it."""
    return isinstance(value, str) and bool(value.strip())


def is_hex_audio(value: object) -> bool:
    """True for inline audio sent as a non-empty, even-length hex string (MiniMax ``hex``)."""
    return isinstance(value, str) and len(value) % 2 == 0 and _HEX.fullmatch(value) is not None


def any_true(value: Any) -> bool:
    """True when ``value`` is ``True`` or a list holding ``True`` (safety-checker flags)."""
    if isinstance(value, list | tuple):
        return any(flag is True for flag in value)
    return value is True
