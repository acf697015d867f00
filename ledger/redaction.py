"""Masks secrets before anything leaves Refundry's hands: log lines, dead letters and their
reasons, applied inbox payloads, CLI output and error reports.

One place decides what a secret looks like, by key name and by value:

- a key whose words name a secret (``api_key``, ``accessKey``, ``private_key``, ``passwd``,
  ``X-Auth``, ``Stripe-Signature``, ``client_secret``…) has its value masked, whatever it
  holds; a key that merely contains such a word (``tokens_used``, ``author``) does not;
- in any string: ``Bearer``/``Basic`` credentials, JWTs, well-known API key formats
  (``sk_live_…``, ``whsec_…``, ``sk-…``, ``r8_…``), ``password=…``-style pairs, and in URLs
  the password of ``scheme://user:password@host`` and the whole query string (presigned
  artifact URLs carry their credentials there).

Limits, so that no input can stall a worker or escape the dead-letter queue: strings are cut
to :data:`MAX_STRING_CHARS`, containers nested deeper than :data:`MAX_DEPTH` are replaced by
a marker, and the walk is iterative (no recursion). Every pattern is anchored at the start of
a run of its characters and uses possessive quantifiers, so a scan is linear in the input.

Hand-written on purpose: the rules are ours (which keys and value shapes are secret on the
APIs Refundry talks to), and general-purpose scrubbers work on key names only.
"""

from __future__ import annotations

import itertools
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "MAX_DEPTH", "MAX_STRING_CHARS", "is_secret_key", "redact", "redact_text"]

MASK = "[redacted]"
MAX_DEPTH = 64
"""Containers nested deeper than this are replaced by ``[too deep]``."""
MAX_STRING_CHARS = 8_192
"""Longer strings are cut, with a marker saying how much was dropped."""

_SECRET_WORDS = frozenset(
    {
        "apikey",
        "auth",
        "authorization",
        "cookie",
        "credential",
        "credentials",
        "dsn",
        "passphrase",
        "passwd",
        "password",
        "pwd",
        "secret",
        "signature",
        "token",
    }
)
_KEY_QUALIFIERS = frozenset({"access", "api", "encryption", "master", "private", "signing"})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

_CREDENTIAL_AFTER_SCHEME = re.compile(r"(?i)\b(bearer|basic|token)(\s++)[^\s\"',;]{8,}+")
_JWT = re.compile(r"(?<![\w-])eyJ[\w-]*+\.[\w-]*+\.[\w-]*+")
_KNOWN_KEY = re.compile(
    r"(?<![\w-])(?:(?:sk|rk)_(?:live|test)_[\w-]++|whsec_[\w+/=-]++|sk-[\w-]{16,}+|r8_[\w-]{16,}+)"
)
_PAIR_KEY = re.compile(r"(?<![\w-])([\w-]{1,64}+)[\"']?\s*+[=:]\s*+[\"']?")
_PAIR_VALUE = re.compile(r"[^\s\"',;&}]++")
_PLAIN_USER = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,31}")
_URL = re.compile(r"(?i)(?<![\w+.-])[a-z][a-z0-9+.-]{0,31}+://[^\s\"'<>]++")


def is_secret_key(name: str) -> bool:
    """True when a mapping key names a secret (``api_key``, ``X-Auth``, ``privateKey``)."""
    words = [w.lower() for w in _WORD.findall(name[:256])]
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(a in _KEY_QUALIFIERS and b == "key" for a, b in itertools.pairwise(words))


def redact_text(text: str, *, limit: int = MAX_STRING_CHARS) -> str:
    """``text`` with every secret-looking value masked (see the module docstring), cut to
    ``limit`` characters."""
    if len(text) > limit:
        text = f"{text[:limit]}…[{len(text) - limit} chars cut]"
    text = _URL.sub(_redact_url, text)
    text = _CREDENTIAL_AFTER_SCHEME.sub(lambda m: f"{m[1]}{m[2]}{MASK}", text)
    text = _JWT.sub(MASK, text)
    text = _KNOWN_KEY.sub(MASK, text)
    return _redact_pairs(text)


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like: dicts, lists, tuples, scalars) with secrets masked.

    Secret-named keys lose their value; every string, keys included, goes through
    :func:`redact_text`. Iterative, so any depth is safe; below :data:`MAX_DEPTH` the
    content is replaced by ``[too deep]``.
    """
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while stack:
        item, parent, slot, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= MAX_DEPTH:
                parent[slot] = "[too deep]"
                continue
            out: dict[Any, Any] = {}
            parent[slot] = out
            for k, v in item.items():
                key = redact_text(k) if isinstance(k, str) else k
                if isinstance(k, str) and is_secret_key(k):
                    out[key] = MASK
                else:
                    out[key] = None
                    stack.append((v, out, key, depth + 1))
        elif isinstance(item, list | tuple):
            if depth >= MAX_DEPTH:
                parent[slot] = "[too deep]"
                continue
            items: list[Any] = [None] * len(item)
            parent[slot] = items
            stack.extend((v, items, i, depth + 1) for i, v in enumerate(item))
        elif isinstance(item, str):
            parent[slot] = redact_text(item)
        else:
            parent[slot] = item
    return root[0]


def _redact_url(match: re.Match[str]) -> str:
    url = match[0]
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # not a URL after all (a bad port, brackets): mask what follows ://
        scheme, _, _ = url.partition("://")
        return f"{scheme}://{MASK}"
    netloc = parts.netloc
    if "@" not in netloc and not parts.query and not parts.fragment:
        return url  # nothing secret; left exactly as written (``sqlite:///…`` included)
    if parts.password is not None or "@" in netloc:
        user = parts.username or ""
        hostport = f"[{host}]" if ":" in host else host
        if port is not None:
            hostport = f"{hostport}:{port}"
        if parts.password is None and not _PLAIN_USER.fullmatch(user):
            user = MASK  # a token given as the user name (``https://<token>@host``)
        netloc = f"{user}:{MASK}@{hostport}" if parts.password is not None else f"{user}@{hostport}"
    query = MASK if parts.query else ""
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _redact_pairs(text: str) -> str:
    """Mask the value after every ``secret_key=`` / ``secret-key: `` in free text. Keys are
    found one after another (a non-secret key consumes only itself and its separator, so
    ``failed: password=…`` still finds ``password``)."""
    out: list[str] = []
    done = 0
    for match in _PAIR_KEY.finditer(text):
        if match.start() < done or not is_secret_key(match[1]):
            continue
        value = _PAIR_VALUE.match(text, match.end())
        if value is None or value[0] == MASK:
            continue
        out += [text[done : match.end()], MASK]
        done = value.end()
    out.append(text[done:])
    return "".join(out)
